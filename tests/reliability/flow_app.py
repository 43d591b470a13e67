"""The app of the flow scenario: the sink app's workload through a route that filters, throttles
and delays, so that a crash finds partitions paused and sought back as well as batches in hand."""

from __future__ import annotations

import os

import anyio

from aiostream_kafka import App, Message, Messages, Throttle
from tests.reliability.scenario import Item, Sink

WORKER = os.environ.get("SINK_WORKER", str(os.getpid()))
#: Every n-th item is filtered out: never handled, its offset committed.
SKIPPED_EVERY = int(os.environ["SINK_SKIP_EVERY"])
sink = Sink(os.environ["SINK_PATH"])

app = App(
    "reliability-flow",
    kafka={"bootstrap_servers": os.environ["SINK_BOOTSTRAP"], "session_timeout_ms": 10000},
    group_id=os.environ["SINK_GROUP"],
    concurrency=6,
)


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
    sink.record([(m.payload.id, m.partition, m.offset, WORKER) for m in messages])
