"""Virtual partitions on real Kafka: order per key under concurrency, commits of the prefix
every virtual partition finished (read back from the broker), retry and DLQ per virtual
partition."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Hashable
from typing import Any

import anyio
import msgspec
from aiokafka import AIOKafkaProducer, TopicPartition

from aiostream_kafka import (
    App,
    DeadLetterQueue,
    Message,
    Messages,
    MonitorEvent,
    ProducerRecord,
    Retry,
    VirtualPartitions,
)
from tests.helpers import (
    Events,
    committed_offsets,
    create_topic,
    eventually,
    eventually_true,
    produce,
    read_records,
    within,
)

FAST = Retry(initial=0.05, maximum=0.1, jitter=0)


def app_on(bootstrap: str, **options: Any) -> App:
    return App(
        "virtual", kafka={"bootstrap_servers": bootstrap}, group_id=f"g-{uuid.uuid4().hex[:8]}", **options
    )


def last_commit(events: Events, topic: str) -> int | None:
    """The offset the app last committed for ``topic``'s partition 0, as its events say."""
    commits = [
        e["offsets"][f"{topic}/0"] for e in events.named("offsets.committed") if f"{topic}/0" in e["offsets"]
    ]
    return commits[-1] if commits else None


async def test_each_key_keeps_its_order_while_its_partitions_batches_run_concurrently(
    primary: str, topic_name: str
) -> None:
    app = app_on(primary)
    events = Events(app)
    seen: dict[bytes | None, list[int]] = defaultdict(list)
    running = {"now": 0, "most": 0}
    count = 600

    @app.route(topic_name, max_messages=100, virtual_partitions=VirtualPartitions(concurrency=10))
    async def handle(messages: Messages[bytes]) -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        try:
            for message in messages:
                seen[message.key].append(int(message.value or b"-1"))
                await anyio.sleep(random.random() / 1000)  # the I/O, in any interleaving
        finally:
            running["now"] -= 1

    await create_topic(primary, topic_name)
    async with app.running():
        await app.producer.produce_many(
            ProducerRecord(topic_name, str(i).encode(), key=f"k{i % 25}") for i in range(count)
        )
        await eventually(lambda: sum(map(len, seen.values())) >= count, what="every message")
        await eventually(lambda: last_commit(events, topic_name) == count, what="the last commit")

    assert seen == {f"k{k}".encode(): list(range(k, count, 25)) for k in range(25)}  # once each, in order
    assert running["most"] > 1
    assert max(e["virtual_partitions"] for e in events.named("batch.received")) > 1
    assert await committed_offsets(primary, app.group_id) == {TopicPartition(topic_name, 0): count}


async def test_a_slow_virtual_partition_holds_the_commit_at_its_first_message(
    primary: str, topic_name: str
) -> None:
    app = app_on(primary)
    events = Events(app)
    release = anyio.Event()
    others_done: list[int] = []
    part = {b"a": 0, b"slow": 1, b"c": 2}

    def lane(message: Message[Any]) -> Hashable:
        return part[message.value or b""]

    @app.route(topic_name, virtual_partitions=VirtualPartitions(concurrency=3, key=lane))
    async def handle(messages: Messages[bytes]) -> None:
        if messages[0].value == b"slow":
            await release.wait()
        else:
            others_done.append(len(messages))

    await create_topic(primary, topic_name)
    # offsets 0-2 in a, 3 in the slow one, 4-9 in c: one poll, one batch
    await produce(primary, topic_name, *[b"a"] * 3, b"slow", *[b"c"] * 6)
    tp = TopicPartition(topic_name, 0)
    async with app.running():
        with within(60, "a and c to finish, and their prefix to be committed"):
            await eventually(lambda: sorted(others_done) == [3, 6], what="a and c")
            await eventually(lambda: events.count("offsets.committed") >= 1, what="a commit")
        assert events.named("batch.received")[0]["count"] == 10
        assert await committed_offsets(primary, app.group_id) == {tp: 3}  # not 10: 3 is in flight
        release.set()
        await eventually(lambda: events.count("batch.processed") == 1, what="the slow one")

    assert await committed_offsets(primary, app.group_id) == {tp: 10}
    # Every commit made meanwhile was the prefix: none went past the slow message before it ended.
    commits = [e["offsets"][f"{topic_name}/0"] for e in events.named("offsets.committed")]
    assert commits == [3, 10]


async def test_a_failing_virtual_partition_retries_alone_then_dead_letters_its_message(
    primary: str, topic_name: str
) -> None:
    app = app_on(primary)
    events = Events(app)
    handled: dict[int, int] = defaultdict(int)
    attempts: list[int] = []
    dlq = f"{topic_name}.dlq"

    def parity(message: Message[Any]) -> Hashable:
        return message.offset % 2

    @app.route(
        topic_name,
        retry=FAST,
        dead_letter_queue=DeadLetterQueue(dlq, max_retries=2),
        virtual_partitions=VirtualPartitions(concurrency=2, key=parity),
    )
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value == b"bad":
                attempts.append(messages.attempt)
                raise ValueError("cannot handle bad")
            handled[message.offset] += 1
            messages.mark_as_consumed(message)

    await create_topic(primary, topic_name)
    await create_topic(primary, dlq)
    values = [b"ok"] * 5 + [b"bad"] + [b"ok"] * 6  # the bad one at offset 5, in the odd one
    await produce(primary, topic_name, *values)
    async with app.running():
        await eventually(lambda: events.count("dlq.dispatched") == 1, what="the dead letter")
        await eventually(lambda: last_commit(events, topic_name) == 12, what="the commit past the batch")

    assert attempts == [1, 2, 3]
    assert handled == {offset: 1 for offset in range(12) if offset != 5}  # the even ones never again
    [dead] = await read_records(primary, dlq)
    assert (dead.value, dict(dead.headers)["source_offset"], dict(dead.headers)["attempts"]) == (
        b"bad",
        b"5",
        b"3",
    )
    failed: list[MonitorEvent] = events.named("batch.failed")
    assert {(e["offset"], e["virtual_partition"]) for e in failed} == {(5, 1)}
    assert await committed_offsets(primary, app.group_id) == {TopicPartition(topic_name, 0): 12}


async def test_a_stop_cancels_a_hung_virtual_partition_and_the_next_run_starts_at_its_message(
    primary: str, topic_name: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    part = {b"a": 0, b"hung": 1, b"c": 2}

    def lane(message: Message[Any]) -> Hashable:
        return part[message.value or b""]

    first = App("virtual", kafka={"bootstrap_servers": primary}, group_id=group, shutdown_timeout=0.5)
    events = Events(first)
    stopped: list[MonitorEvent] = []
    first.monitor.subscribe("app.stopped", stopped.append)
    others_done: list[int] = []

    @first.route(topic_name, virtual_partitions=VirtualPartitions(concurrency=3, key=lane))
    async def hang(messages: Messages[bytes]) -> None:
        if messages[0].value == b"hung":
            await anyio.sleep_forever()
        others_done.append(len(messages))

    await create_topic(primary, topic_name)
    await produce(primary, topic_name, *[b"a"] * 3, b"hung", *[b"c"] * 6)
    async with first.running():
        await eventually(lambda: sorted(others_done) == [3, 6], what="a and c")
        await eventually(lambda: last_commit(events, topic_name) == 3, what="the prefix before the hung one")

    [stop] = stopped
    assert stop["abandoned"] == [f"{topic_name}/0"]
    tp = TopicPartition(topic_name, 0)
    assert await committed_offsets(primary, group) == {tp: 3}

    second = App("virtual", kafka={"bootstrap_servers": primary}, group_id=group)
    again: list[int] = []

    @second.route(topic_name, virtual_partitions=VirtualPartitions(concurrency=3, key=lane))
    async def handle(messages: Messages[bytes]) -> None:
        again.extend(m.offset for m in messages)

    async with second.running():
        await eventually(lambda: len(again) == 7, what="what was in flight, again")
        await eventually_true(lambda: _committed_is(primary, group, tp, 10), what="the commit past the batch")
    assert sorted(again) == list(range(3, 10))  # in flight: the hung one and c's work past it


async def _committed_is(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> bool:
    return (await committed_offsets(bootstrap, group)).get(tp) == offset


class Outcome(msgspec.Struct, frozen=True):
    """What a run of the fidelity scenario shows: each key's offsets as first handled, the
    dead letters, the failures by virtual partition, the committed offset."""

    per_key: dict[str, list[int]]
    dead_letters: list[tuple[int, int]]  # (source offset, attempts)
    failures: list[tuple[int, int | None, int]]  # (offset, virtual partition, attempt)
    committed: int | None


VALUES = [b"ok"] * 7 + [b"bad"] + [b"ok"] * 12  # key c{i % 4}: the bad one, offset 7, is c3's


def fidelity_app(bootstrap: str, topic: str, seen: list[tuple[str, int]]) -> App:
    group = f"g-{uuid.uuid4().hex[:8]}"
    app = App("fidelity-virtual", kafka={"bootstrap_servers": bootstrap}, group_id=group)

    @app.route(
        topic,
        retry=FAST,
        dead_letter_queue=DeadLetterQueue(f"{topic}.dlq", max_retries=1),
        virtual_partitions=VirtualPartitions(concurrency=4),
    )
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value == b"bad":
                raise ValueError("cannot handle bad")
            seen.append(((message.key or b"").decode(), message.offset))
            messages.mark_as_consumed(message)

    return app


def outcome(
    seen: list[tuple[str, int]], letters: list[tuple[int, int]], failed: list[Any], committed: int | None
) -> Outcome:
    per_key: dict[str, list[int]] = defaultdict(list)
    for key, offset in seen:
        if offset not in per_key[key]:
            per_key[key].append(offset)
    failures = [(e["offset"], e["virtual_partition"], e["attempt"]) for e in failed]
    return Outcome(dict(per_key), sorted(letters), failures, committed)


async def test_the_harness_runs_virtual_partitions_as_real_kafka_does(primary: str, topic_name: str) -> None:
    keys = [f"c{i % 4}".encode() for i in range(len(VALUES))]
    seen_on_kafka: list[tuple[str, int]] = []
    on_kafka = fidelity_app(primary, topic_name, seen_on_kafka)
    events = Events(on_kafka)
    await create_topic(primary, topic_name)
    await create_topic(primary, f"{topic_name}.dlq")
    producer = AIOKafkaProducer(bootstrap_servers=primary)
    await producer.start()
    try:  # all of it before the app starts: one batch, as the harness's
        for key, value in zip(keys, VALUES, strict=True):
            await producer.send(topic_name, value, key=key, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    async with on_kafka.running():
        await eventually(lambda: last_commit(events, topic_name) == len(VALUES), what="the whole topic")
    letters = [
        (int(dict(r.headers)["source_offset"]), int(dict(r.headers)["attempts"]))
        for r in await read_records(primary, f"{topic_name}.dlq")
    ]
    committed = (await committed_offsets(primary, on_kafka.group_id)).get(TopicPartition(topic_name, 0))
    kafka = outcome(seen_on_kafka, letters, events.named("batch.failed"), committed)

    seen_in_memory: list[tuple[str, int]] = []
    in_memory = fidelity_app("127.0.0.1:1", topic_name, seen_in_memory)
    async with in_memory.testing() as t:
        memory = t.clusters["primary"]
        for key, value in zip(keys, VALUES, strict=True):
            memory.append(topic_name, value, key=key, partition=0, timestamp_ms=0)
        await t.drain()
        memory_letters = [(d.source_offset, d.attempts) for d in t.dead_lettered(topic_name)]
        failed = t.events.named("batch.failed")
        harness = outcome(seen_in_memory, memory_letters, failed, t.committed(topic_name))

    assert kafka == harness
    assert kafka.dead_letters == [(7, 2)]
    assert kafka.per_key["c3"] == [3, 11, 15, 19]  # 7 went to the DLQ; c3 kept its order
    assert kafka.committed == len(VALUES)
