"""The reliability suite: known workloads through crashes, outages, rebalances, failures,
poison and shutdowns on real Kafka, each ending in one line and ``lost=0``."""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import defaultdict
from pathlib import Path

import anyio
import pytest
from aiokafka import TopicPartition

from aiostream_kafka import App, DeadLetterQueue, Messages, Retry
from tests.helpers import Events, committed_offsets, create_topic, eventually, read_records
from tests.kafka_clusters import KafkaClusters
from tests.reliability.scenario import (
    Item,
    Report,
    Sink,
    crash_then_restart,
    failing_on,
    produce_workload,
    start_worker,
)

pytestmark = pytest.mark.slow

COUNT = 10_000
PARTITIONS = 6
MAX_MESSAGES = 50
FAST_RETRY = Retry(initial=0.02, maximum=0.05, jitter=0)


def worker_env(primary: str, topic: str, group: str, sink: Sink, **extra: str) -> dict[str, str]:
    return {
        "SINK_BOOTSTRAP": primary,
        "SINK_TOPIC": topic,
        "SINK_GROUP": group,
        "SINK_PATH": sink.path,
        "SINK_MAX_MESSAGES": str(MAX_MESSAGES),
        **extra,
    }


def per_partition_in_order(rows: list[tuple[int, int, int, str]]) -> bool:
    """First deliveries of each partition come in offset order (redeliveries may repeat)."""
    firsts: dict[int, list[int]] = defaultdict(list)
    seen: set[int] = set()
    for id_, partition, offset, _ in rows:
        if id_ not in seen:
            seen.add(id_)
            firsts[partition].append(offset)
    return all(offsets == sorted(offsets) for offsets in firsts.values())


async def test_crash_kill_9_mid_stream_then_restart(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    sink = Sink(tmp_path / "sink.db")
    env = worker_env(primary, topic_name, f"g-{uuid.uuid4().hex[:8]}", sink)

    await crash_then_restart(env, sink, COUNT, tmp_path)

    report = Report.of("crash", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert report.duplicates <= PARTITIONS * MAX_MESSAGES  # at most the batch in hand, per partition
    assert per_partition_in_order(sink.rows())


async def test_outage_of_the_secondary_while_consuming_from_both(
    kafka: KafkaClusters, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secondary_ids = await produce_workload(kafka.secondary, topic_name, 1500, 3)
    await create_topic(kafka.primary, topic_name, 3)
    sink = Sink(tmp_path / "sink.db")
    app = App(
        "outage",
        kafka={"bootstrap_servers": kafka.primary},
        clusters={"secondary": {"bootstrap_servers": kafka.secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )
    events = Events(app)
    outage = anyio.Event()

    @app.route(topic_name, payload=Item, max_messages=20)
    async def on_primary(messages: Messages[Item]) -> None:
        sink.record([(m.payload.id, m.partition, m.offset, "primary") for m in messages])

    @app.route(topic_name, payload=Item, cluster="secondary", max_messages=10)
    async def on_secondary(messages: Messages[Item]) -> None:
        if processed("secondary") >= 200:
            await outage.wait()  # so that the broker goes mid-stream
        sink.record([(m.payload.id, m.partition, m.offset, "secondary") for m in messages])

    primary_ids = list(range(100_000, 100_000 + 2000))
    before, meanwhile = primary_ids[:1000], primary_ids[1000:]

    async def feed_the_primary(ids: list[int]) -> None:
        for i in ids:
            await app.producer.produce_nowait(topic_name, Item(i), partition=i % 3)
        await app.producer.flush()

    def processed(worker: str) -> int:
        return sum(1 for row in sink.rows() if row[3] == worker)

    def done(ids: list[int]) -> bool:
        return {row[0] for row in sink.rows()} >= set(ids)

    async with app.running():
        await feed_the_primary(before)
        await eventually(lambda: processed("secondary") >= 200, within=60, what="the secondary mid-stream")
        kafka.stop("secondary")
        down_at, mid_stream = time.monotonic(), processed("secondary")
        try:
            outage.set()
            await eventually(
                lambda: events.count("cluster.unreachable", cluster="secondary") == 1,
                within=60,
                what="the app to notice the secondary is away",
            )
            # The primary flows while the secondary is away: what is produced now is processed
            # before the secondary comes back.
            await feed_the_primary(meanwhile)
            await eventually(lambda: done(meanwhile), within=60, what="the primary during the outage")
            assert events.count("cluster.reachable", cluster="secondary") == 0
        finally:
            kafka.start("secondary")
        up_at = time.monotonic()
        await eventually(
            lambda: sink.count() == len(primary_ids) + len(secondary_ids), within=120, what="both to finish"
        )

    report = Report.of("outage", primary_ids + secondary_ids, sink)
    report.write(capsys)
    with capsys.disabled():
        print(f"[outage] primary messages produced and processed during the {up_at - down_at:.0f}s outage: "
              f"{len(meanwhile)}")  # fmt: skip
    assert report.lost == 0
    assert mid_stream < len(secondary_ids), "the outage came too late to be mid-stream"


async def test_rebalance_a_second_process_joins_then_leaves(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    sink = Sink(tmp_path / "sink.db")
    env = worker_env(primary, topic_name, f"g-{uuid.uuid4().hex[:8]}", sink, SINK_BATCH_DELAY="0.1")

    def by(worker: str) -> int:
        return sum(1 for row in sink.rows() if row[3] == worker)

    first = start_worker({**env, "SINK_WORKER": "first"}, tmp_path / "first.log")
    second = None
    try:
        await eventually(lambda: sink.count() >= 1500, within=60, what="the first process under way")
        second = start_worker({**env, "SINK_WORKER": "second"}, tmp_path / "second.log")
        await eventually(lambda: by("second") >= 1000, within=60, what="the second process taking a share")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        await eventually(lambda: sink.count() == COUNT, within=120, what="the first process to finish alone")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    report = Report.of("rebalance", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert by("first") > 0
    assert by("second") > 0
    assert per_partition_in_order(sink.rows())


async def test_failures_5_percent_of_messages_always_fail(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    failing = set(random.Random(20261123).sample(produced, COUNT // 20))
    sink = Sink(tmp_path / "sink.db")
    dlq = f"{topic_name}.dlq"
    app = App(
        "failures", kafka={"bootstrap_servers": primary}, group_id=f"g-{uuid.uuid4().hex[:8]}", concurrency=6
    )

    app.route(topic_name, payload=Item, max_messages=MAX_MESSAGES, retry=FAST_RETRY,
              dead_letter_queue=DeadLetterQueue(dlq, max_retries=1))(failing_on(failing, sink))  # fmt: skip

    async with app.running():
        await eventually(lambda: sink.count() == COUNT - len(failing), within=120, what="every good item")

    dead = [int(record.key) for record in await read_records(primary, dlq)]
    report = Report.of("failures", produced, sink, dead_lettered=dead)
    report.write(capsys)
    assert report.lost == 0
    assert sorted(dead) == sorted(failing)
    assert report.duplicates == 0  # progress was marked, so retries repeat nothing
    assert per_partition_in_order(sink.rows())


async def test_poison_1_percent_undecodable_payloads(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    poison = set(random.Random(7).sample(range(COUNT), COUNT // 100))
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS, poison=poison)
    sink = Sink(tmp_path / "sink.db")
    dlq = f"{topic_name}.dlq"
    app = App(
        "poison", kafka={"bootstrap_servers": primary}, group_id=f"g-{uuid.uuid4().hex[:8]}", concurrency=6
    )

    @app.route(topic_name, payload=Item, max_messages=MAX_MESSAGES, retry=FAST_RETRY,
               dead_letter_queue=DeadLetterQueue(dlq, max_retries=3))  # fmt: skip
    async def handle(messages: Messages[Item]) -> None:
        done = []
        try:
            for message in messages:
                done.append((message.payload.id, message.partition, message.offset, "app"))
                messages.mark_as_consumed(message)
        finally:
            sink.record(done)

    async with app.running():
        await eventually(lambda: sink.count() == COUNT - len(poison), within=120, what="every decodable item")

    dead = await read_records(primary, dlq)
    report = Report.of("poison", produced, sink, dead_lettered=[int(r.key) for r in dead])
    report.write(capsys)
    assert report.lost == 0
    assert {int(r.key) for r in dead} == poison
    assert all(dict(r.headers)["decode_error"] == b"true" for r in dead)
    assert all(dict(r.headers)["attempts"] == b"1" for r in dead)


async def test_shutdown_sigterm_under_load(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    sink = Sink(tmp_path / "sink.db")
    group = f"g-{uuid.uuid4().hex[:8]}"
    env = worker_env(primary, topic_name, group, sink, SINK_BATCH_DELAY="0.2", SINK_SHUTDOWN_TIMEOUT="10")

    worker = start_worker({**env, "SINK_WORKER": "first"}, tmp_path / "first.log")
    await eventually(lambda: sink.count() >= COUNT // 4, within=60, what="a quarter of the workload")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    # Within the shutdown timeout: nothing in hand had to be cut short.
    assert "app.stopped cluster=primary abandoned=[]" in (tmp_path / "first.log").read_text()

    processed_up_to: dict[TopicPartition, int] = {}
    for _, partition, offset, _ in sink.rows():
        tp = TopicPartition(topic_name, partition)
        processed_up_to[tp] = max(processed_up_to.get(tp, 0), offset + 1)
    assert await committed_offsets(primary, group) == processed_up_to
    assert sink.count() < COUNT

    rest = start_worker({**env, "SINK_WORKER": "second", "SINK_BATCH_DELAY": "0"}, tmp_path / "second.log")
    try:
        await eventually(lambda: sink.count() == COUNT, within=90, what="the rest after the restart")
    finally:
        rest.send_signal(signal.SIGTERM)
        rest.wait(timeout=30)

    report = Report.of("shutdown", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert report.duplicates == 0  # a graceful stop commits exactly what was processed
