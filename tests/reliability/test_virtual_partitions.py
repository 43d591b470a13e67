"""Virtual partitions through a kill -9 and through failing messages, on real Kafka: every
item accounted for, each key's items in order, duplicates within what could be in flight."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, DeadLetterQueue, Retry, VirtualPartitions
from tests.helpers import Events, create_topic, eventually, read_records
from tests.reliability.scenario import Item, Report, Sink, crash_then_restart, failing_on

pytestmark = pytest.mark.slow

COUNT = 10_000
PARTITIONS = 6
MAX_MESSAGES = 50
FAST_RETRY = Retry(initial=0.02, maximum=0.05, jitter=0)
KEYS = 60  # key i % 60: each key on one partition (i % 6), 10 keys a partition


async def produce_keyed_workload(bootstrap: str, topic: str) -> list[int]:
    """Item i with key ``k{i % KEYS}`` on partition i % PARTITIONS: a key's items are in id order."""
    await create_topic(bootstrap, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(COUNT):
            key = f"k{i % KEYS}".encode()
            await producer.send(topic, msgspec.json.encode(Item(i)), key=key, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()
    return list(range(COUNT))


def per_key_in_order(rows: list[tuple[int, int, int, str]]) -> bool:
    """Each key's first deliveries come in id order (redeliveries may repeat)."""
    firsts: dict[int, list[int]] = defaultdict(list)
    seen: set[int] = set()
    for id_, _, _, _ in rows:
        if id_ not in seen:
            seen.add(id_)
            firsts[id_ % KEYS].append(id_)
    return all(ids == sorted(ids) for ids in firsts.values())


async def test_crash_kill_9_mid_stream_with_virtual_partitions_then_restart(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_keyed_workload(primary, topic_name)
    sink = Sink(tmp_path / "sink.db")
    env = {
        "SINK_BOOTSTRAP": primary,
        "SINK_TOPIC": topic_name,
        "SINK_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "SINK_PATH": sink.path,
        "SINK_MAX_MESSAGES": str(MAX_MESSAGES),
    }
    await crash_then_restart(env, sink, COUNT, tmp_path, "tests.reliability.virtual_app:app")

    report = Report.of("crash-virtual-partitions", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    # What can be in flight: a partition's batch in hand (its virtual partitions side by side);
    # the batches before it were committed before it started, and of it only the done prefix.
    assert report.duplicates <= PARTITIONS * MAX_MESSAGES
    assert per_key_in_order(sink.rows())


async def test_failures_5_percent_of_messages_always_fail_in_their_virtual_partitions(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_keyed_workload(primary, topic_name)
    failing = set(random.Random(20261201).sample(produced, COUNT // 20))
    sink = Sink(tmp_path / "sink.db")
    dlq = f"{topic_name}.dlq"
    app = App(
        "failures-virtual",
        kafka={"bootstrap_servers": primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        concurrency=6,
    )

    app.route(topic_name, payload=Item, max_messages=MAX_MESSAGES, retry=FAST_RETRY,
              dead_letter_queue=DeadLetterQueue(dlq, max_retries=1),
              virtual_partitions=VirtualPartitions(concurrency=10))(failing_on(failing, sink))  # fmt: skip

    events = Events(app)
    async with app.running():
        await eventually(lambda: sink.count() == COUNT - len(failing), within=120, what="every good item")
        # The good items can all be done while a failing one still waits for its last retry.
        await eventually(lambda: events.count("dlq.dispatched") == len(failing), what="every bad one dropped")

    dead = [
        int(msgspec.json.decode(record.value or b"", type=Item).id)
        for record in await read_records(primary, dlq)
    ]
    report = Report.of("failures-virtual-partitions", produced, sink, dead_lettered=dead)
    report.write(capsys)
    assert report.lost == 0
    assert sorted(dead) == sorted(failing)
    assert report.duplicates == 0  # marked progress and the other virtual partitions' work are never redone
    assert per_key_in_order(sink.rows())
