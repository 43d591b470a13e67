"""Faults the handler did not cause never spend its retry budget: a handler on the primary
forwards everything it reads to the secondary, which goes away, while a dead-letter queue
with 3 retries stands ready. Nothing may reach it, and every message is forwarded once the
secondary is back."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import msgspec
import pytest

from aiostream_kafka import App, DeadLetterQueue, Messages, ProducerRecord, Retry
from tests.helpers import Events, create_topic, eventually, read_records
from tests.kafka_clusters import KafkaClusters
from tests.reliability.scenario import Item, Report, Sink, produce_workload

pytestmark = pytest.mark.slow

COUNT = 600
OUTAGE = 10.0  # seconds the secondary stays away


class Forwarder:
    """The app, and a gate its handler stops at (once a quarter is through) until told on."""

    def __init__(self, kafka: KafkaClusters, topic: str, sink: Sink, **secondary: object) -> None:
        self.reached_the_gate = anyio.Event()
        self.open_the_gate = anyio.Event()
        self.app = app = App(
            "forwarder",
            kafka={"bootstrap_servers": kafka.primary},
            clusters={"secondary": {"bootstrap_servers": kafka.secondary, **secondary}},
            group_id=f"g-{uuid.uuid4().hex[:8]}",
        )
        self.events = Events(app)

        @app.route(
            topic,
            payload=Item,
            max_messages=20,
            retry=Retry(backoff=0.2, max_backoff=2.0),
            dead_letter_queue=DeadLetterQueue(f"{topic}.dlq", max_retries=3),
        )
        async def forward(messages: Messages[Item]) -> None:
            if sink.count() >= COUNT // 4:
                self.reached_the_gate.set()
                await self.open_the_gate.wait()
            await app.producers["secondary"].produce_many(
                [ProducerRecord(f"{topic}.out", m.value, key=m.key) for m in messages]
            )
            sink.record([(m.payload.id, m.partition, m.offset, "forwarder") for m in messages])


async def forwarded_ids(kafka: KafkaClusters, topic: str) -> set[int]:
    records = await read_records(kafka.secondary, f"{topic}.out")
    return {msgspec.json.decode(record.value or b"", type=Item).id for record in records}


async def test_the_produce_target_is_down_when_the_app_starts_and_comes_up_later(
    kafka: KafkaClusters, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(kafka.primary, topic_name, COUNT, 3)
    await create_topic(kafka.secondary, f"{topic_name}.out")
    sink = Sink(tmp_path / "sink.db")
    forwarder = Forwarder(kafka, topic_name, sink)
    forwarder.open_the_gate.set()
    events = forwarder.events

    kafka.stop("secondary")
    try:
        async with forwarder.app.running():
            await eventually(lambda: events.count("batch.failed", transient=True) >= 3, what="waits on it")
            await anyio.sleep(OUTAGE)  # the outage itself
            kafka.start("secondary")
            await eventually(lambda: sink.count() == COUNT, within=120, what="every message forwarded")
    finally:
        kafka.start("secondary")

    dead = [e["offset"] for e in events.named("dlq.dispatched")]
    report = Report.of("target-down-at-start", produced, sink, dead_lettered=dead)
    report.write(capsys)
    assert (report.lost, report.dead_lettered) == (0, 0)
    assert await forwarded_ids(kafka, topic_name) == set(produced)
    assert events.count("batch.failed", transient=False) == 0


async def test_the_produce_target_goes_away_mid_stream_for_longer_than_the_request_timeout(
    kafka: KafkaClusters, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(kafka.primary, topic_name, COUNT, 3)
    await create_topic(kafka.secondary, f"{topic_name}.out")
    sink = Sink(tmp_path / "sink.db")
    forwarder = Forwarder(kafka, topic_name, sink, request_timeout_ms=2000)  # shorter than the outage
    events = forwarder.events

    try:
        async with forwarder.app.running():
            await forwarder.reached_the_gate.wait()
            kafka.stop("secondary")
            forwarder.open_the_gate.set()
            await eventually(lambda: events.count("batch.failed", transient=True) >= 1, what="a timeout")
            await anyio.sleep(OUTAGE)
            kafka.start("secondary")
            await eventually(lambda: sink.count() == COUNT, within=120, what="every message forwarded")
    finally:
        kafka.start("secondary")

    dead = [e["offset"] for e in events.named("dlq.dispatched")]
    report = Report.of("target-away-mid-stream", produced, sink, dead_lettered=dead)
    report.write(capsys)
    assert (report.lost, report.dead_lettered) == (0, 0)
    assert await forwarded_ids(kafka, topic_name) == set(produced)
    assert events.count("batch.failed", transient=False) == 0
