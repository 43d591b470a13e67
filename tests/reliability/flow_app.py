"""The app of the flow scenario: the sink app's workload through a route that filters, throttles
and delays, so that a crash finds partitions paused and sought back as well as batches in hand."""

from __future__ import annotations

import os

import anyio

from aiostream_kafka import Message, Messages, Throttle
from tests.reliability.scenario import Item, Sink, app_from_env

WORKER = os.environ.get("SINK_WORKER", str(os.getpid()))
#: Every n-th item is filtered out: never handled, its offset committed.
SKIPPED_EVERY = int(os.environ["SINK_SKIP_EVERY"])
sink = Sink(os.environ["SINK_PATH"])

app = app_from_env("reliability-flow")


def not_tenth(message: Message[Item]) -> bool:
    return message.payload.id % SKIPPED_EVERY != 0


@app.route(
    os.environ["SINK_TOPIC"],
    payload=Item,
    max_messages=50,
    filter=not_tenth,
    throttle=Throttle(messages=1500, per=1.0),
    delay=0.2,
)
async def record(messages: Messages[Item]) -> None:
    await anyio.sleep(0.01)  # the work
    sink.record_handled(messages, WORKER)
