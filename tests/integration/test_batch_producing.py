"""produce_many on real Kafka: it builds its own record batches, and what reaches the broker
is what one send a message would have written, where the Java client would have put it."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2

from aiostream_kafka import App, MonitorEvent, ProduceError, ProducerRecord
from aiostream_kafka.admin import TopicSpec
from aiostream_kafka.producing.batching import partition_for_key
from tests.helpers import create_topic, read_every_partition

PARTITIONS = 3


def watched(app: App, *names: str) -> list[MonitorEvent]:
    """Events of ``names`` only: a ``"*"`` subscriber would still let produce_many batch, but
    subscribing by name is what a listener does."""
    seen: list[MonitorEvent] = []
    for name in names:
        app.monitor.subscribe(name, seen.append)
    return seen


def small_batches(primary: str, **settings: Any) -> App:
    """Batches of at most 1 KiB, so that a few hundred messages make many."""
    return App("batching", kafka={"bootstrap_servers": primary, "max_batch_size": 1024, **settings})


async def test_keyed_records_land_where_murmur2_and_one_send_a_message_put_them(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name, PARTITIONS)
    keys = [f"user-{n}" for n in range(60)]
    app = small_batches(primary)
    async with app.running():
        batched = await app.producer.produce_many(ProducerRecord(topic_name, b"v", key=k) for k in keys)
        each = [await app.producer.produce(topic_name, b"v", key=k) for k in keys]

    for key, by_batch, by_send in zip(keys, batched, each, strict=True):
        assert by_batch.partition == by_send.partition == (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS
        assert by_batch.partition == partition_for_key(key.encode(), PARTITIONS)
    assert {m.partition for m in batched} == set(range(PARTITIONS))


async def test_every_result_is_its_own_messages_in_input_order_with_order_kept_per_partition(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name, PARTITIONS)
    app = small_batches(primary)
    seen = watched(app, "batch.produced")
    records = [
        ProducerRecord(
            topic_name,
            f"m{n}".encode() * 10,
            key=None if n % 3 == 0 else f"k{n % 7}",
            partition=2 if n % 10 == 5 else None,
            headers={"n": str(n)} if n % 2 else None,
            timestamp_ms=1_700_000_000_000 + n if n % 4 == 0 else None,
        )
        for n in range(400)
    ]
    async with app.running():
        results = await app.producer.produce_many(records)
    stored = await read_every_partition(primary, topic_name, PARTITIONS)

    assert len(stored) == len(records)  # each once
    for n, (record, result) in enumerate(zip(records, results, strict=True)):
        message = stored[result.partition, result.offset]
        assert (result.topic, message.value) == (topic_name, record.value)
        assert message.key == (record.key.encode() if record.key else None)
        assert dict(message.headers) == ({"n": str(n).encode()} if n % 2 else {})
        assert result.timestamp == message.timestamp
        if record.timestamp_ms is not None:
            assert message.timestamp == record.timestamp_ms
        if record.partition is not None:
            assert result.partition == 2
    for partition in range(PARTITIONS):  # each partition holds its messages in input order
        offsets = [r.offset for r in results if r.partition == partition]
        assert offsets == sorted(offsets)
    keyless = [
        r.partition
        for r, record in zip(results, records, strict=True)
        if record.key is None and record.partition is None
    ]
    assert len(set(keyless)) > 1  # a batch of them on each partition in turn
    assert sum(e["count"] for e in seen) == len(records)
    assert len(seen) > PARTITIONS


async def test_an_idempotent_producer_builds_batches_too(primary: str, topic_name: str) -> None:
    await create_topic(primary, topic_name, PARTITIONS)
    app = small_batches(primary, enable_idempotence=True)
    seen = watched(app, "batch.produced")
    async with app.running():
        results = await app.producer.produce_many(
            ProducerRecord(topic_name, b"x" * 50, partition=1) for _ in range(200)
        )

    assert [r.offset for r in results] == list(range(200))
    assert len(seen) > 1
    assert [e["base_offset"] for e in seen] == sorted(e["base_offset"] for e in seen)


async def test_a_record_over_max_request_size_fails_naming_the_setting_and_the_others_are_sent(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name, 1)
    app = App(
        "too-big", kafka={"bootstrap_servers": primary, "max_request_size": 2000, "max_batch_size": 1024}
    )
    seen = watched(app, "produce.failed", "batch.produced")
    records = [
        ProducerRecord(topic_name, b"a"),
        ProducerRecord(topic_name, b"x" * 3000),
        ProducerRecord(topic_name, b"b"),
    ]
    async with app.running():
        with pytest.raises(ProduceError) as raised:
            await app.producer.produce_many(records)
    stored = await read_every_partition(primary, topic_name, 1)

    assert "the message is 3086 bytes encoded, over the producer's max_request_size of 2000 bytes" in str(
        raised.value
    )
    assert "raise max_request_size (max.request.size) in the settings of cluster 'primary'" in str(
        raised.value
    )
    assert isinstance(raised.value.__cause__, MessageSizeTooLargeError)
    assert [r.value for r in stored.values()] == [b"a", b"b"]
    assert [e.name for e in seen if e.name == "produce.failed"] == ["produce.failed"]


async def test_a_batch_the_topic_cannot_take_fails_every_message_of_it_in_one_event(
    primary: str, topic_name: str
) -> None:
    app = App("refused", kafka={"bootstrap_servers": primary})
    seen = watched(app, "produce.failed", "batch.produced")
    async with app.admin:
        await app.admin.create_topics([TopicSpec(topic_name, settings={"max.message.bytes": "1000"})])
    async with app.running():
        with pytest.raises(ProduceError) as raised:
            await app.producer.produce_many(
                ProducerRecord(topic_name, b"x" * 300, partition=0) for _ in range(5)
            )
        fits = await app.producer.produce_many([ProducerRecord(topic_name, b"fits", partition=0)])

    assert "the broker refused the batch holding the message" in str(raised.value)
    assert "raise the topic's max.message.bytes" in str(raised.value)
    assert isinstance(raised.value.__cause__, MessageSizeTooLargeError)
    [failed] = [e for e in seen if e.name == "produce.failed"]
    assert (failed["topic"], failed["partition"], failed["count"], failed["error"]) == (
        topic_name,
        0,
        5,
        raised.value,
    )
    assert fits[0].offset == 0  # nothing of the refused batch was written
    assert [e["count"] for e in seen if e.name == "batch.produced"] == [1]
