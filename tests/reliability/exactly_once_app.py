"""The exactly-once pipeline of the kill -9 and rebalance scenarios: each batch it consumes
goes on to another topic in the batch's transaction, with the offsets."""

from __future__ import annotations

import os

import anyio

from aiostream_kafka import App, Messages, ProducerRecord

TARGET = os.environ["EOS_TARGET"]
DELAY = float(os.environ.get("EOS_BATCH_DELAY", "0.05"))

app = App(
    "exactly-once-pipeline",
    kafka={"bootstrap_servers": os.environ["EOS_BOOTSTRAP"], "session_timeout_ms": 10000},
    group_id=os.environ["EOS_GROUP"],
    concurrency=6,
)


@app.route(os.environ["EOS_SOURCE"], max_messages=50, exactly_once=True)
async def forward(messages: Messages[bytes]) -> None:
    await app.producer.produce_many(ProducerRecord(TARGET, m.value, key=m.key) for m in messages)
    await anyio.sleep(DELAY)  # the rest of the work, inside the open transaction: a kill lands anywhere
