"""The app of the virtual partitions crash scenario: each partition's batch split into ten
virtual partitions by key, each recording what it handled in the SQLite sink once its I/O
(a sleep per message) is done."""

from __future__ import annotations

import os

import anyio

from aiostream_kafka import Messages, VirtualPartitions
from tests.reliability.scenario import Item, Sink, app_from_env

WORKER = os.environ.get("SINK_WORKER", str(os.getpid()))
DELAY = float(os.environ.get("SINK_MESSAGE_DELAY", "0.02"))
sink = Sink(os.environ["SINK_PATH"])

app = app_from_env("reliability-virtual")


@app.route(
    os.environ["SINK_TOPIC"],
    payload=Item,
    max_messages=int(os.environ.get("SINK_MAX_MESSAGES", "50")),
    virtual_partitions=VirtualPartitions(concurrency=10),
)
async def record(messages: Messages[Item]) -> None:
    await anyio.sleep(DELAY * len(messages))  # the I/O, one wait a message
    sink.record_handled(messages, WORKER)
