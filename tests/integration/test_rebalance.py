"""Rebalances on real Kafka: a second member joins the group while the first holds a batch."""

from __future__ import annotations

import uuid

import anyio

from aiostream_kafka import App, Consumer, Messages
from tests.helpers import Events, create_topic, eventually


def member(primary: str, group: str, **options: object) -> App:
    return App("rebalance", kafka={"bootstrap_servers": primary}, group_id=group, **options)  # type: ignore[arg-type]


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
    second_seen: list[int] = []

    @second.route(topic_name)
    async def on_second(messages: Messages[bytes]) -> None:
        second_seen.extend(m.offset for m in messages)

    async with first.running():
        await first.producer.produce(topic_name, b"x", partition=0)
        await first.producer.produce(topic_name, b"y", partition=1)
        with anyio.fail_after(30):
            await holding.wait()
        async with second.running():
            await eventually(lambda: bool(hook_calls), within=30, what="the revoked hook")

    assert saw_revoked
    assert sorted(p for call in hook_calls for p in call) == [0, 1]  # eager rebalance: all of them go
    assert second_seen == []  # the batches the first member finished were committed before they went


async def test_a_batch_that_outlives_revoke_timeout_is_abandoned_uncommitted_and_redelivered(
    primary: str, topic_name: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, topic_name, partitions=1)
    first = member(primary, group, revoke_timeout=1.0, shutdown_timeout=2.0)
    events = Events(first)
    first_started = anyio.Event()
    first_finished: list[int] = []

    @first.route(topic_name)
    async def stubborn(messages: Messages[bytes]) -> None:
        first_started.set()
        await anyio.sleep(60)  # ignores messages.revoked
        first_finished.extend(m.offset for m in messages)

    second = member(primary, group)
    second_seen: list[int] = []

    @second.route(topic_name)
    async def on_second(messages: Messages[bytes]) -> None:
        second_seen.extend(m.offset for m in messages)

    async with first.running():
        await first.producer.produce(topic_name, b"x")
        with anyio.fail_after(30):
            await first_started.wait()
        async with second.running():
            await eventually(lambda: bool(events.named("partitions.revoked")), within=30, what="the revoke")
            [revoke] = events.named("partitions.revoked")
            assert revoke["abandoned"] == [f"{topic_name}/0"]
            # Whoever owns the partition now (either member) gets the abandoned message again.
            await eventually(
                lambda: second_seen == [0] or events.count("batch.received", first_offset=0) >= 2,
                within=30,
                what="the abandoned message delivered again",
            )

    assert first_finished == []
