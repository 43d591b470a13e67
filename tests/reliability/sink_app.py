"""The app the process-level scenarios run (crash, rebalance, shutdown): it records every
message it handles in the SQLite sink, slowly enough to be caught mid-stream."""

from __future__ import annotations

import os

import anyio

from aiostream_kafka import Messages
from tests.reliability.scenario import Item, Sink, app_from_env

WORKER = os.environ.get("SINK_WORKER", str(os.getpid()))
DELAY = float(os.environ.get("SINK_BATCH_DELAY", "0.05"))
sink = Sink(os.environ["SINK_PATH"])

app = app_from_env("reliability", shutdown_timeout=float(os.environ.get("SINK_SHUTDOWN_TIMEOUT", "20")))


@app.route(
    os.environ["SINK_TOPIC"], payload=Item, max_messages=int(os.environ.get("SINK_MAX_MESSAGES", "50"))
)
async def record(messages: Messages[Item]) -> None:
    await anyio.sleep(DELAY)  # the work
    sink.record_handled(messages, WORKER)
