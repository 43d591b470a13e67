"""produce_many's own batches: the partitioner they share with the Java client, and what the
testing harness captures of them."""

from __future__ import annotations

import gc
import weakref

import msgspec
import pytest
from aiokafka.partitioner import DefaultPartitioner

from aiostream_kafka import App, ProducerRecord
from aiostream_kafka.producing.batching import partition_for_key
from aiostream_kafka.runtime.clients import RecordBatch
from aiostream_kafka.testing.memory import MemoryCluster

KEYS = [b"", b"a", b"order-1", b"order-2", "ключ".encode(), bytes(range(256)), b"x" * 1000]


def test_a_key_goes_where_aiokafkas_default_partitioner_sends_it_for_any_partition_count() -> None:
    for partitions in (1, 2, 3, 6, 7, 100):
        every = list(range(partitions))
        for key in KEYS:
            assert partition_for_key(key, partitions) == DefaultPartitioner()(key, every, every)


def test_the_harness_picks_the_same_partition_for_a_key() -> None:
    cluster = MemoryCluster("primary", default_partitions=6)
    for key in KEYS:
        assert partition_for_key(key, 6) == cluster.partition_for("orders", key)


def test_javas_own_murmur2_vectors_give_javas_partitions() -> None:
    # From the Java client's UtilsTest: murmur2 of these strings, made positive, mod 2**31.
    assert partition_for_key(b"21", 2**31 - 1) == (-973932308 & 0x7FFFFFFF) % (2**31 - 1)
    assert partition_for_key(b"foobar", 2**31 - 1) == (-790332482 & 0x7FFFFFFF) % (2**31 - 1)


class Order(msgspec.Struct):
    id: int


def shop() -> App:
    return App("shop", kafka={"bootstrap_servers": "127.0.0.1:1", "max_batch_size": 200}, log_events=False)


async def test_the_harness_captures_produce_many_batch_by_batch_as_any_other_produce() -> None:
    app = shop()  # batches of at most 200 bytes: several for these 60 messages
    records = [ProducerRecord("orders", Order(n), key=str(n % 4)) for n in range(40)]
    records += [
        ProducerRecord("orders", Order(n), headers={"n": str(n)}, timestamp_ms=1_000 + n)
        for n in range(40, 60)
    ]

    async with app.testing(partitions=3) as t:
        results = await app.producer.produce_many(records)
        produced = t.produced("orders", payload=Order)
        batches = t.events.named("batch.produced", topic="orders")

    assert sorted(m.payload.id for m in produced) == list(range(60))
    by_place = {(m.partition, m.offset): m for m in produced}
    for record, result in zip(records, results, strict=True):
        assert by_place[result.partition, result.offset].payload == record.value  # its own
        if record.key is not None:
            assert result.partition == partition_for_key(record.key.encode(), 3)
    keyless = [by_place[r.partition, r.offset] for r in results[40:]]
    assert [m.headers for m in keyless] == [{"n": str(n).encode()} for n in range(40, 60)]
    assert [m.timestamp_ms for m in keyless] == [1_000 + n for n in range(40, 60)]
    assert len({m.partition for m in keyless}) > 1  # a batch on each partition in turn
    assert sum(e["count"] for e in batches) == 60
    assert len(batches) > 3


async def test_a_record_without_a_timestamp_gets_its_batchs_time_on_the_apps_clock() -> None:
    app = shop()
    records = [ProducerRecord("orders", Order(n), key=str(n % 2)) for n in range(30)]
    records[7] = ProducerRecord("orders", Order(7), key="1", timestamp_ms=5)  # its own, kept

    async with app.testing(partitions=2) as t:
        t.clock.advance(3600)  # an hour ahead of the machine's
        before = int(t.clock.now() * 1000)
        results = await app.producer.produce_many(records)
        after = int(t.clock.now() * 1000)
        produced = {(m.partition, m.offset): m for m in t.produced("orders")}

    for n, result in enumerate(results):
        assert result.timestamp == produced[result.partition, result.offset].timestamp_ms
        if n == 7:
            assert result.timestamp == 5
        else:
            assert before <= result.timestamp <= after  # the app's clock, not the machine's


async def test_produce_many_results_read_like_a_list_made_when_read() -> None:
    app = shop()
    records = [ProducerRecord("orders", Order(n), partition=n % 2) for n in range(10)]

    async with app.testing(partitions=2):
        results = await app.producer.produce_many(records)

    assert len(results) == 10
    as_list = list(results)
    assert results == as_list
    assert as_list == list(results)  # made afresh when read, equal each time
    assert results[3] == as_list[3]
    assert results[-1] == as_list[-1]
    assert results[2:5] == as_list[2:5]
    assert [r.partition for r in results] == [n % 2 for n in range(10)]
    assert [r.offset for r in results if r.partition == 0] == [0, 1, 2, 3, 4]
    with pytest.raises(IndexError):
        results[10]


async def test_produce_many_results_do_not_keep_the_batches_bytes_alive() -> None:
    app = shop()
    built: list[weakref.ref[object]] = []

    async with app.testing(partitions=2):
        producer_client = app.producer._kafka
        assert producer_client is not None
        create_batch = producer_client.create_batch

        def watched_batch() -> RecordBatch:
            batch = create_batch()
            built.append(weakref.ref(batch))
            return batch

        producer_client.create_batch = watched_batch  # type: ignore[method-assign]
        results = await app.producer.produce_many(ProducerRecord("orders", Order(n)) for n in range(60))
        gc.collect()

    assert len(results) == 60
    assert len(built) > 2
    assert [ref() for ref in built] == [None] * len(built)
