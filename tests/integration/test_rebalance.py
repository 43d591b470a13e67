"""Rebalances on real Kafka: a second member joins the group while the first holds a batch."""

from __future__ import annotations

import uuid
from typing import Any

import anyio

from aiostream_kafka import App, Consumer, Messages
from tests.helpers import Events, create_topic, eventually, within


def member(primary: str, group: str, **options: Any) -> App:
    return App("rebalance", kafka={"bootstrap_servers": primary}, group_id=group, **options)


async def test_a_handler_sees_revoked_and_stops_early_then_the_revoked_hook_runs(
    primary: str, topic_name: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, topic_name, partitions=2)
    first = member(primary, group)
    saw_revoked: list[int] = []
    hook_calls: list[list[int]] = []
    holding = anyio.Event()

    class Patient(Consumer):
        async def consume(self, messages: Messages[bytes]) -> None:
            if messages.first_offset > 0:
                return  # only the first batch of each partition holds on
            holding.set()
            with anyio.move_on_after(30):
                while not messages.revoked:  # noqa: ASYNC110 - polling the flag is the pattern for handlers
                    await anyio.sleep(0.05)
            if messages.revoked:
                saw_revoked.append(messages.partition)
                assert self.is_revoked(messages.partition)

        async def revoked(self, partitions: list[int]) -> None:
            hook_calls.append(partitions)

    first.routes.topic(topic_name, consumer=Patient)
    second = member(primary, group)
    second_events = Events(second)
    second_seen: list[int] = []

    @second.route(topic_name)
    async def on_second(messages: Messages[bytes]) -> None:
        second_seen.extend(m.offset for m in messages)

    async with first.running():
        await first.producer.produce(topic_name, b"x", partition=0)
        await first.producer.produce(topic_name, b"y", partition=1)
        with within(30, "the first member to hold a batch"):
            await holding.wait()
        async with second.running():
            await eventually(lambda: bool(hook_calls), within=30, what="the revoked hook")
            await eventually(
                lambda: bool(second_events.named("partitions.assigned")), what="the second member's share"
            )
            # Offset 1 of each partition, produced now: whoever owns a partition reads it; had the
            # first member's batches not been committed before they went, their new owner would
            # read offset 0 before it.
            for partition in (0, 1):
                await first.producer.produce(topic_name, b"after", partition=partition)
            await eventually(lambda: 1 in second_seen, what="the second member reading after the rebalance")

    assert saw_revoked
    assert sorted(hook_calls[0]) == [0, 1]  # eager rebalance: all of them go
    assert set(second_seen) == {1}  # the batches the first member finished were committed before they went


async def test_a_batch_that_outlives_revoke_timeout_is_abandoned_uncommitted_and_redelivered(
    primary: str, topic_name: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, topic_name, partitions=1)
    first = member(primary, group, revoke_timeout=1.0, shutdown_timeout=2.0)
    events = Events(first)
    first_started = anyio.Event()
    first_cancelled: list[int] = []

    @first.route(topic_name)
    async def stubborn(messages: Messages[bytes]) -> None:
        first_started.set()
        try:
            await anyio.sleep_forever()  # ignores messages.revoked
        except anyio.get_cancelled_exc_class():
            first_cancelled.append(messages.first_offset)
            raise

    second = member(primary, group)
    second_seen: list[int] = []

    @second.route(topic_name)
    async def on_second(messages: Messages[bytes]) -> None:
        second_seen.extend(m.offset for m in messages)

    async with first.running():
        await first.producer.produce(topic_name, b"x")
        with within(30, "the first member's handler to start"):
            await first_started.wait()
        async with second.running():
            await eventually(lambda: bool(events.named("partitions.revoked")), within=30, what="the revoke")
            [revoke] = events.named("partitions.revoked")
            assert revoke["abandoned"] == [f"{topic_name}/0"]
            assert first_cancelled == [0]  # cut short at revoke_timeout, not left running
            # Whoever owns the partition now (either member) gets the abandoned message again.
            await eventually(
                lambda: second_seen == [0] or events.count("batch.received", first_offset=0) >= 2,
                within=30,
                what="the abandoned message delivered again",
            )
