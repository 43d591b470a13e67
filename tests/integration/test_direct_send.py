"""Sends past aiokafka's ``send`` (producing/direct.py) land where ``send`` would put them, and
whatever that path does not cover still goes through ``send``, with its errors."""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from aiostream_kafka import App, ProduceError
from aiostream_kafka.producing.direct import DirectSend
from tests.helpers import create_topic, read_every_partition

PARTITIONS = 6


async def test_keyed_keyless_and_placed_messages_land_where_aiokafkas_send_puts_them(
    primary: str, topic_name: str
) -> None:
    ours, theirs = f"{topic_name}-ours", f"{topic_name}-send"
    for topic in (ours, theirs):
        await create_topic(primary, topic, PARTITIONS)
    keys = [b"order-%d" % n for n in range(200)]
    app = App("direct", kafka={"bootstrap_servers": primary})
    raw = AIOKafkaProducer(bootstrap_servers=primary)
    await raw.start()
    try:
        async with app.running():
            producer = app.producer
            await producer.produce(ours, b"first")  # through send: the topic's metadata is there now
            assert producer._direct is not None  # the path under test
            assert ours in producer._direct.known
            deliveries = [await producer.produce_nowait(ours, b"v", key=key) for key in keys]
            deliveries += [await producer.produce_nowait(ours, b"placed", partition=4, timestamp_ms=7)]
            deliveries += [await producer.produce_nowait(ours, b"keyless") for _ in range(60)]
            deliveries += [await producer.produce_nowait(ours, None, key=b"tombstone")]
            results = [await delivery for delivery in deliveries]
        for key in keys:
            await raw.send(theirs, b"v", key=key)
        await raw.send(theirs, None, key=b"tombstone")
        await raw.flush()
    finally:
        await raw.stop()

    def keyed(records: list[ConsumerRecord[bytes, bytes]]) -> dict[bytes, int]:
        return {r.key: r.partition for r in records if r.key is not None}

    mine = list((await read_every_partition(primary, ours, PARTITIONS)).values())
    sends = list((await read_every_partition(primary, theirs, PARTITIONS)).values())
    assert keyed(mine) == keyed(sends)  # the same partition for every key as aiokafka's send
    assert len(mine) == 1 + 200 + 1 + 60 + 1
    [placed] = [r for r in mine if r.value == b"placed"]
    assert (placed.partition, placed.timestamp) == (4, 7)
    keyless = Counter(r.partition for r in mine if r.value == b"keyless")
    assert len(keyless) > 1  # spread, as send's random choice does
    assert [r.value for r in mine if r.key == b"tombstone"] == [None]
    by_place = {(r.partition, r.offset) for r in mine}
    assert all((m.partition, m.offset) in by_place for m in results)  # every future tells its place


async def test_what_the_direct_path_leaves_to_send_fails_as_send_does(primary: str, topic_name: str) -> None:
    await create_topic(primary, topic_name, PARTITIONS)
    app = App("direct-errors", kafka={"bootstrap_servers": primary, "max_request_size": 2000})
    async with app.running():
        await app.producer.produce(topic_name, b"first")
        with pytest.raises(ProduceError, match="over the producer's max_request_size of 2000 bytes"):
            await app.producer.produce_nowait(topic_name, b"x" * 1990)  # near the limit: send measures it
        with pytest.raises(ProduceError, match=f"it has no partition {PARTITIONS} "):
            await app.producer.produce_nowait(topic_name, b"x", partition=PARTITIONS)
        delivered = await (await app.producer.produce_nowait(topic_name, b"x" * 1800))  # under it
    assert delivered.topic == topic_name


async def test_only_a_plain_aiokafka_producer_is_sent_to_directly(primary: str) -> None:
    def of(**settings: object) -> DirectSend | None:
        return DirectSend.of(AIOKafkaProducer(bootstrap_servers=primary, **settings))

    assert of() is not None
    assert of(enable_idempotence=True) is not None  # idempotence is the accumulator's business
    assert of(transactional_id="t") is None  # send checks that a transaction is open
    assert of(value_serializer=bytes) is None
    assert of(key_serializer=bytes) is None
    assert of(partitioner=lambda key, every, available: every[0]) is None
