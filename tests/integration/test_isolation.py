"""Transactional producers upstream: what a route sees of their commits and aborts, and where
its group's offsets end up (past the markers, so that lag reaches 0)."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from aiostream_kafka import App, Messages
from tests.helpers import committed_offsets, create_topic, eventually, eventually_true


async def write_transactions(bootstrap: str, topic: str, *transactions: tuple[str, list[bytes]]) -> None:
    """Each transaction's values in one transaction, committed or aborted as it says."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        for outcome, values in transactions:
            await producer.begin_transaction()
            for value in values:
                await producer.send_and_wait(topic, value, partition=0)
            if outcome == "commit":
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


async def end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def app_reading(bootstrap: str, topic: str, seen: list[bytes | None], **options: object) -> App:
    app = App("isolation", kafka={"bootstrap_servers": bootstrap}, group_id=f"g-{uuid.uuid4().hex[:8]}")

    @app.route(topic, **options)  # type: ignore[arg-type]
    async def handle(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    return app


async def test_aborted_records_never_reach_a_handler_and_the_group_commits_past_every_marker(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await write_transactions(
        primary, topic_name, ("commit", [b"a", b"b"]), ("abort", [b"x", b"y"]), ("commit", [b"c"])
    )
    end = await end_offset(primary, topic_name)  # 5 records and 3 markers
    seen: list[bytes | None] = []
    app = app_reading(primary, topic_name, seen)
    group = app.group_id
    tp = TopicPartition(topic_name, 0)
    committed: dict[TopicPartition, int] = {}

    async def at_end() -> bool:
        committed.update(await committed_offsets(primary, group))
        return committed.get(tp) == end

    async with app.running():
        await eventually(lambda: len(seen) == 3, what="the committed records")
        await eventually_true(at_end, what="a commit at the end offset")

    assert seen == [b"a", b"b", b"c"]
    assert (end, committed[tp]) == (8, 8)  # lag 0: not stuck on the last marker


async def test_a_partition_holding_only_an_aborted_transaction_is_committed_to_its_end(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await write_transactions(primary, topic_name, ("abort", [b"x", b"y", b"z"]))
    seen: list[bytes | None] = []
    app = app_reading(primary, topic_name, seen)
    tp = TopicPartition(topic_name, 0)

    async def at_end() -> bool:
        return (await committed_offsets(primary, app.group_id)).get(tp) == 4  # 3 records, 1 marker

    async with app.running():
        await eventually_true(at_end, what="a commit at the end offset")

    assert seen == []


async def test_a_route_may_read_uncommitted_records_too(primary: str, topic_name: str) -> None:
    await create_topic(primary, topic_name)
    await write_transactions(primary, topic_name, ("abort", [b"x"]), ("commit", [b"a"]))
    seen: list[bytes | None] = []
    app = app_reading(primary, topic_name, seen, isolation_level="read_uncommitted")

    async with app.running():
        await eventually(lambda: len(seen) == 2, what="both records")

    assert seen == [b"x", b"a"]
