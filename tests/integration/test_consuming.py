"""Consuming on real Kafka: both clusters in one app, batches, concurrency, offsets and retries."""

from __future__ import annotations

import uuid
from collections import defaultdict

import anyio
import anyio.lowlevel
import msgspec
import pytest
from aiokafka import TopicPartition

from aiostream_kafka import App, Backoff, Consumer, Messages
from tests.helpers import Events, committed_offsets, create_topic, eventually, produce

FAST_RETRY = Backoff(initial=0.05, maximum=0.2, jitter=0)


class Order(msgspec.Struct):
    id: int


def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


async def test_one_app_consumes_from_both_clusters(primary: str, secondary: str, topic_name: str) -> None:
    """The seed scenario: a topic on the primary, another through an inline override to the secondary."""
    app = App("both", kafka={"bootstrap_servers": primary}, group_id=group_id())
    seen: list[tuple[str, str, int]] = []

    @app.route(f"{topic_name}-a", payload=Order)
    async def on_a(messages: Messages[Order]) -> None:
        seen.extend((messages.cluster, m.topic, m.payload.id) for m in messages)

    class OnB(Consumer):
        async def consume(self, messages: Messages[Order]) -> None:
            seen.extend((self.cluster, m.topic, m.payload.id) for m in messages)

    app.routes.topic(f"{topic_name}-b", consumer=OnB, payload=Order, kafka={"bootstrap.servers": secondary})

    async with app.running():
        await app.producer.produce(f"{topic_name}-a", Order(1))
        await app.producers[secondary].produce(f"{topic_name}-b", Order(2))
        await eventually(lambda: len(seen) == 2, what="one message from each cluster")

    assert sorted(seen) == [(secondary, f"{topic_name}-b", 2), ("primary", f"{topic_name}-a", 1)]
    assert {g.cluster for g in app.topology.subscription_groups} == {"primary", secondary}


async def test_a_handler_produces_to_the_other_cluster(primary: str, secondary: str, topic_name: str) -> None:
    app = App(
        "relay",
        kafka={"bootstrap_servers": primary},
        clusters={"analytics": {"bootstrap_servers": secondary}},
        group_id=group_id(),
    )
    relayed: list[int] = []

    @app.route(topic_name, payload=Order)
    async def relay(messages: Messages[Order]) -> None:
        for message in messages:
            await app.producers["analytics"].produce(f"{topic_name}-relayed", Order(message.payload.id * 10))

    @app.route(f"{topic_name}-relayed", payload=Order, cluster="analytics")
    async def on_relayed(messages: Messages[Order]) -> None:
        relayed.extend(m.payload.id for m in messages)

    async with app.running():
        for i in range(3):
            await app.producer.produce(topic_name, Order(i))
        await eventually(lambda: len(relayed) == 3, what="three relayed messages on the secondary")

    assert relayed == [0, 10, 20]


async def test_batches_respect_max_messages_and_arrive_in_offset_order(primary: str, topic_name: str) -> None:
    app = App("batches", kafka={"bootstrap_servers": primary}, group_id=group_id())
    batches: list[list[int]] = []

    @app.route(topic_name, max_messages=10, max_wait=0.1)
    async def handle(messages: Messages[bytes]) -> None:
        batches.append([m.offset for m in messages])
        assert [m.offset for m in messages] == list(range(messages.first_offset, messages.last_offset + 1))

    await create_topic(primary, topic_name)
    async with app.running():
        for _ in range(25):
            await app.producer.produce_nowait(topic_name, b"x")
        await app.producer.flush()
        await eventually(lambda: sum(map(len, batches)) == 25, what="25 messages")

    assert all(1 <= len(batch) <= 10 for batch in batches)
    assert [offset for batch in batches for offset in batch] == list(range(25))


async def test_partitions_run_concurrently_but_never_one_partition_with_itself(
    primary: str, topic_name: str
) -> None:
    app = App("concurrency", kafka={"bootstrap_servers": primary}, group_id=group_id(), concurrency=4)
    in_flight: dict[int, int] = defaultdict(int)
    most_per_partition = 0
    most_overall = 0
    handled = 0
    together = anyio.Event()

    @app.route(topic_name, max_messages=2)
    async def meets_another(messages: Messages[bytes]) -> None:
        nonlocal most_per_partition, most_overall, handled
        in_flight[messages.partition] += 1
        most_per_partition = max(most_per_partition, in_flight[messages.partition])
        most_overall = max(most_overall, sum(in_flight.values()))
        if most_overall > 1:
            together.set()
        # Until a batch of another partition runs beside this one; run one at a time, the
        # batches would each wait out the guard, and most_overall stay 1.
        with anyio.move_on_after(10):
            await together.wait()
        await anyio.lowlevel.checkpoint()  # a batch of this partition run beside it would start now
        in_flight[messages.partition] -= 1
        handled += len(messages)

    # Written before the app starts, so that its first poll holds several partitions at once.
    await create_topic(primary, topic_name, partitions=4)
    for partition in range(4):
        await produce(primary, topic_name, *[b"x"] * 6, partition=partition)
    async with app.running():
        await eventually(
            lambda: handled == 24,
            within=60,
            what="24 messages over 4 partitions (each batch waits up to 10 s for another beside it)",
        )

    assert most_per_partition == 1
    assert most_overall > 1


async def test_offsets_are_committed_only_after_the_handler_succeeds(primary: str, topic_name: str) -> None:
    group = group_id()
    await create_topic(primary, topic_name)

    # First run: five messages handled and committed.
    first = App("offsets", kafka={"bootstrap_servers": primary}, group_id=group)
    first_seen: list[bytes | None] = []

    @first.route(topic_name)
    async def ok(messages: Messages[bytes]) -> None:
        first_seen.extend(m.value for m in messages)

    async with first.running():
        for i in range(5):
            await first.producer.produce(topic_name, f"m{i}")
        await eventually(lambda: len(first_seen) == 5, what="the first five messages")

    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 5}

    # Second run: five more arrive, the handler fails every time, nothing is committed.
    second = App("offsets", kafka={"bootstrap_servers": primary}, group_id=group, retry_backoff=FAST_RETRY)
    attempts: list[tuple[int, int]] = []

    @second.route(topic_name)
    async def failing(messages: Messages[bytes]) -> None:
        attempts.append((messages.first_offset, messages.attempt))
        raise RuntimeError("downstream is down")

    async with second.running():
        for i in range(5, 10):
            await second.producer.produce(topic_name, f"m{i}")
        await eventually(lambda: len(attempts) >= 3, what="three failed attempts")

    assert all(offset == 5 for offset, _ in attempts)  # never the committed ones again
    assert [attempt for _, attempt in attempts[:3]] == [1, 2, 3]
    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 5}

    # Third run: exactly the uncommitted five are processed again.
    third = App("offsets", kafka={"bootstrap_servers": primary}, group_id=group)
    third_seen: list[bytes | None] = []

    @third.route(topic_name)
    async def recovered(messages: Messages[bytes]) -> None:
        third_seen.extend(m.value for m in messages)

    async with third.running():
        await eventually(lambda: len(third_seen) == 5, what="the five uncommitted messages")
        # And nothing more: a committed message delivered again would come before this one.
        await third.producer.produce(topic_name, b"m10")
        await eventually(lambda: b"m10" in third_seen, what="a message produced after them")

    assert third_seen == [f"m{i}".encode() for i in range(5, 11)]
    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 11}


async def test_a_failing_partition_is_retried_while_the_others_keep_flowing(
    primary: str, topic_name: str
) -> None:
    app = App("retry", kafka={"bootstrap_servers": primary}, group_id=group_id(), retry_backoff=FAST_RETRY)
    events = Events(app)
    done: dict[int, list[int]] = defaultdict(list)
    failures_left = {0: 2}

    @app.route(topic_name)
    async def flaky(messages: Messages[bytes]) -> None:
        if failures_left.get(messages.partition, 0) > 0:
            failures_left[messages.partition] -= 1
            raise RuntimeError(f"partition {messages.partition} is unlucky")
        done[messages.partition].append(messages.attempt)

    await create_topic(primary, topic_name, partitions=2)
    async with app.running():
        await app.producer.produce(topic_name, b"a", partition=0)
        await app.producer.produce(topic_name, b"b", partition=1)
        await eventually(lambda: 0 in done and 1 in done, what="both partitions handled")

    assert done[1] == [1]  # partition 1 never waited for partition 0
    assert done[0] == [3]  # the handler saw the attempt number
    failed = events.named("batch.failed", topic=topic_name, partition=0)
    assert [e["attempt"] for e in failed] == [1, 2]
    assert isinstance(failed[0]["error"], RuntimeError)
    assert events.count("retry.scheduled", partition=0) == 2


async def test_a_payload_is_decoded_lazily_into_the_routes_type(primary: str, topic_name: str) -> None:
    app = App("payloads", kafka={"bootstrap_servers": primary}, group_id=group_id())
    payloads: list[Order] = []

    @app.route(topic_name, payload=Order, format="msgpack")
    async def handle(messages: Messages[Order]) -> None:
        payloads.extend(messages.payloads())

    async with app.running():
        await app.producer.produce(topic_name, msgspec.msgpack.encode(Order(7)))
        await eventually(lambda: len(payloads) == 1, what="one decoded order")

    assert payloads == [Order(7)]


async def test_consumer_hooks_run_in_order(primary: str, topic_name: str) -> None:
    app = App("hooks", kafka={"bootstrap_servers": primary}, group_id=group_id())
    calls: list[str] = []

    class Hooked(Consumer):
        async def on_start(self) -> None:
            calls.append("on_start")

        async def consume(self, messages: Messages[bytes]) -> None:
            calls.append(f"consume {len(messages)}")

        async def revoked(self, partitions: list[int]) -> None:
            calls.append(f"revoked {partitions}")

        async def shutdown(self) -> None:
            calls.append("shutdown")

    app.routes.topic(topic_name, consumer=Hooked)
    async with app.running():
        await app.producer.produce(topic_name, b"x")
        await eventually(lambda: "consume 1" in calls, what="one batch")

    assert calls[:2] == ["on_start", "consume 1"]
    assert calls[-1] == "shutdown"


@pytest.mark.parametrize("initial_offset", ["earliest", "latest"])
async def test_initial_offset_decides_where_a_new_group_starts(
    primary: str, topic_name: str, initial_offset: str
) -> None:
    await produce(primary, topic_name, b"before")
    app = App("initial", kafka={"bootstrap_servers": primary}, group_id=group_id())
    events = Events(app)
    seen: list[bytes | None] = []

    @app.route(topic_name, initial_offset=initial_offset)
    async def handle(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    def committed_past_before() -> bool:
        return any(e["offsets"].get(f"{topic_name}/0") == 1 for e in events.named("offsets.committed"))

    async with app.running():
        # The group has settled on its starting offset once it commits one: past "before",
        # having handled it (earliest) or having started at the end (latest: an idle
        # listener commits where its consumer stands).
        await eventually(committed_past_before, what="the new group's first commit")
        await app.producer.produce(topic_name, b"after")
        await eventually(lambda: b"after" in seen, what="the message produced after joining")

    assert seen == ([b"before", b"after"] if initial_offset == "earliest" else [b"after"])
