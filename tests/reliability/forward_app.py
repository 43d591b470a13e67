"""The forwarding app of the produce_many crash scenario: each batch it consumes goes on to
another topic through ``produce_many``'s own batches before its offsets are committed."""

from __future__ import annotations

import os

import anyio

from aiostream_kafka import App, Messages, ProducerRecord
from aiostream_kafka.instrumentation.monitor import MonitorEvent

TARGET = os.environ["FORWARD_TARGET"]
DELAY = float(os.environ.get("FORWARD_BATCH_DELAY", "0.1"))

app = App(
    "forwarder",
    kafka={"bootstrap_servers": os.environ["FORWARD_BOOTSTRAP"], "session_timeout_ms": 10000},
    group_id=os.environ["FORWARD_GROUP"],
    concurrency=6,
)


class FirstBatch:
    """Prints the first ``batch.produced``: the test's sign that produce_many built its own."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, event: MonitorEvent) -> None:
        if not self.seen:
            self.seen = True
            print(f"batch.produced topic={event['topic']} count={event['count']}", flush=True)


app.monitor.subscribe("batch.produced", FirstBatch())


@app.route(os.environ["FORWARD_SOURCE"], max_messages=50)
async def forward(messages: Messages[bytes]) -> None:
    await app.producer.produce_many(ProducerRecord(TARGET, m.value, key=m.key) for m in messages)
    await anyio.sleep(DELAY)  # the rest of the work, after the produce: a kill lands anywhere
