"""Faults the handler did not cause: they never spend its retry budget, and never cost the
good messages of other partitions.

A handler on the primary forwards everything it reads to the secondary, which goes away,
while a dead-letter queue with 3 retries stands ready: nothing may reach it, and every
message is forwarded once the secondary is back. A partition the consumer cannot read
stalls alone while the others finish, and finishes once the cause is fixed."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiokafka.codec
import anyio
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Backoff, DeadLetterQueue, Messages, ProducerRecord, Retry
from tests.helpers import Events, create_topic, eventually, read_records, within
from tests.kafka_clusters import KafkaClusters
from tests.reliability.scenario import Item, Report, Sink, produce_workload

pytestmark = pytest.mark.slow

COUNT = 600
MAX_RETRIES = 3
#: Transient failures of one partition an outage lasts for: more than its retry budget, so
#: that had they spent attempts, a dead letter would have come before the last of them.
OUTLASTED = MAX_RETRIES + 3


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
            retry=Retry(initial=0.2, maximum=2.0),
            dead_letter_queue=DeadLetterQueue(f"{topic}.dlq", max_retries=MAX_RETRIES),
        )
        async def forward(messages: Messages[Item]) -> None:
            if sink.count() >= COUNT // 4:
                self.reached_the_gate.set()
                await self.open_the_gate.wait()
            await app.producers["secondary"].produce_many(
                [ProducerRecord(f"{topic}.out", m.value, key=m.key) for m in messages]
            )
            sink.record([(m.payload.id, m.partition, m.offset, "forwarder") for m in messages])

    def outlasted_the_retries(self) -> bool:
        """Whether some partition has failed transiently more often than its retry budget allows."""
        failures = Counter(e["partition"] for e in self.events.named("batch.failed", transient=True))
        return max(failures.values(), default=0) >= OUTLASTED


async def account(
    scenario: str,
    forwarder: Forwarder,
    kafka: KafkaClusters,
    topic: str,
    produced: list[int],
    sink: Sink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The accounting line; nothing lost, nothing dead-lettered, no retry spent, all forwarded."""
    events = forwarder.events
    dead = [e["offset"] for e in events.named("dlq.dispatched")]
    report = Report.of(scenario, produced, sink, dead_lettered=dead)
    report.write(capsys)
    assert (report.lost, report.dead_lettered) == (0, 0)
    assert events.count("batch.failed", transient=False) == 0
    records = await read_records(kafka.secondary, f"{topic}.out")
    assert {msgspec.json.decode(record.value or b"", type=Item).id for record in records} == set(produced)


async def test_the_produce_target_is_down_when_the_app_starts_and_comes_up_later(
    kafka: KafkaClusters, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(kafka.primary, topic_name, COUNT, 3)
    await create_topic(kafka.secondary, f"{topic_name}.out")
    sink = Sink(tmp_path / "sink.db")
    forwarder = Forwarder(kafka, topic_name, sink)
    forwarder.open_the_gate.set()

    kafka.stop("secondary")
    try:
        async with forwarder.app.running():
            await eventually(forwarder.outlasted_the_retries, within=120, what="an outage past the retries")
            kafka.start("secondary")
            await eventually(lambda: sink.count() == COUNT, within=120, what="every message forwarded")
    finally:
        kafka.start("secondary")

    await account("target-down-at-start", forwarder, kafka, topic_name, produced, sink, capsys)


async def test_the_produce_target_goes_away_mid_stream_for_longer_than_the_request_timeout(
    kafka: KafkaClusters, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(kafka.primary, topic_name, COUNT, 3)
    await create_topic(kafka.secondary, f"{topic_name}.out")
    sink = Sink(tmp_path / "sink.db")
    forwarder = Forwarder(kafka, topic_name, sink, request_timeout_ms=2000)  # shorter than the outage

    try:
        async with forwarder.app.running():
            with within(60, "a quarter of the messages forwarded"):
                await forwarder.reached_the_gate.wait()
            kafka.stop("secondary")
            forwarder.open_the_gate.set()
            await eventually(forwarder.outlasted_the_retries, within=120, what="an outage past the retries")
            kafka.start("secondary")
            await eventually(lambda: sink.count() == COUNT, within=120, what="every message forwarded")
    finally:
        kafka.start("secondary")

    await account("target-away-mid-stream", forwarder, kafka, topic_name, produced, sink, capsys)


async def test_one_partition_the_consumer_cannot_read_stalls_alone_and_finishes_once_fixed(
    kafka: KafkaClusters,
    topic_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Partition 0 holds lz4 batches, read by a process that lacks the codec until it is fixed."""
    await create_topic(kafka.primary, topic_name, 6)
    producers = {
        "lz4": AIOKafkaProducer(bootstrap_servers=kafka.primary, linger_ms=5, compression_type="lz4"),
        "none": AIOKafkaProducer(bootstrap_servers=kafka.primary, linger_ms=5),
    }
    produced = list(range(3000))
    for producer in producers.values():
        await producer.start()
    try:
        for i in produced:
            partition = i % 6
            producer = producers["lz4" if partition == 0 else "none"]
            await producer.send(topic_name, msgspec.json.encode(Item(i)), partition=partition)
        for producer in producers.values():
            await producer.flush()
    finally:
        for producer in producers.values():
            await producer.stop()

    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    sink = Sink(tmp_path / "sink.db")
    app = App(
        "unreadable",
        kafka={"bootstrap_servers": kafka.primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        retry_backoff=Backoff(initial=0.2, maximum=1.0),
    )
    events = Events(app)

    @app.route(topic_name, payload=Item, max_messages=50)
    async def record(messages: Messages[Item]) -> None:
        sink.record([(m.payload.id, m.partition, m.offset, "reader") for m in messages])

    readable = [i for i in produced if i % 6 != 0]
    async with app.running():
        await eventually(lambda: sink.count() == len(readable), within=120, what="the readable partitions")
        healthy = Report.of("unreadable-partition:healthy", readable, sink)
        await eventually(lambda: events.count("fetch.failed") >= 2, what="the stalled partition reported")
        assert {(e["topic"], e["partition"]) for e in events.named("fetch.failed")} == {(topic_name, 0)}
        monkeypatch.undo()  # the fix is deployed: the codec is there
        await eventually(lambda: sink.count() == len(produced), within=120, what="the stalled partition")

    report = Report.of("unreadable-partition:after-fix", produced, sink)
    healthy.write(capsys)
    report.write(capsys)
    assert (healthy.lost, report.lost) == (0, 0)
    assert events.count("listener.crashed") == 0


class LinesWritten:
    """Every WARNING or worse aiokafka writes, as written: before any filter holds one back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.records: list[logging.LogRecord] = []
        make = logging.Logger.makeRecord

        def making(logger: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(logger, *args, **kwargs)
            if record.name.startswith("aiokafka") and record.levelno >= logging.WARNING:
                self.records.append(record)
            return record

        monkeypatch.setattr(logging.Logger, "makeRecord", making)

    def most_of_one_kind(self, since: int) -> int:
        """How often the most written line (by where it is written) was written since then."""
        kinds = Counter((r.name, r.lineno) for r in self.records[since:])
        return max(kinds.values(), default=0)


async def test_an_outage_is_one_event_pair_and_a_few_log_lines_that_name_the_cluster(
    kafka: KafkaClusters, topic_name: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(
        "outage-report",
        kafka={"bootstrap_servers": kafka.primary},
        clusters={"secondary": {"bootstrap_servers": kafka.secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )
    events = Events(app)
    seen: list[str] = []
    written = LinesWritten(monkeypatch)

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        seen.extend("primary" for _ in messages)

    @app.route(topic_name, cluster="secondary")
    async def on_secondary(messages: Messages[bytes]) -> None:
        seen.extend("secondary" for _ in messages)

    caplog.set_level(logging.WARNING, logger="aiokafka")
    try:
        async with app.running():
            await app.producers["secondary"].produce(topic_name, b"before")
            await eventually(lambda: "secondary" in seen, what="the secondary consumed")
            kafka.stop("secondary")
            await eventually(lambda: events.count("cluster.unreachable") == 1, what="the outage noticed")
            noticed_at = time.monotonic()
            since = len(written.records)
            # The outage lasts until aiokafka has written lines of one kind many times over.
            await eventually(
                lambda: written.most_of_one_kind(since) >= 10, within=120, what="aiokafka to retry and say so"
            )
            during = [r for r in caplog.records if r.name.startswith("aiokafka")]
            restarted_at = time.monotonic()
            kafka.start("secondary")
            await eventually(
                lambda: events.count("cluster.reachable") == 1, within=60, what="it noticed back"
            )
            await app.producers["secondary"].produce(topic_name, b"after")
            await eventually(lambda: seen.count("secondary") == 2, within=60, what="the secondary again")
    finally:
        kafka.start("secondary")

    [away] = events.named("cluster.unreachable")
    [back] = events.named("cluster.reachable")
    assert (away["cluster"], back["cluster"]) == ("secondary", "secondary")
    assert back["away_for"] >= round(restarted_at - noticed_at, 1) - 0.1  # from going away to coming back
    assert all(r.getMessage().startswith("[cluster '") for r in during)  # each names its cluster
    secondary = [r for r in during if r.getMessage().startswith("[cluster 'secondary'] ")]
    assert secondary, "aiokafka said nothing of the outage"
    kinds = {(r.name, r.lineno) for r in secondary}
    assert len(secondary) <= 2 * len(kinds)  # a line or two of each kind, not one per attempt
