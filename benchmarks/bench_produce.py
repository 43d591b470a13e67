"""Produce throughput: ``produce_many`` (batches it builds) against raw aiokafka's ``send`` loop
and librdkafka (confluent-kafka), same run.

``BENCH_PRODUCE_MESSAGES`` messages of 100 bytes (default 200,000; the issue's figure is
1,000,000) to 6 partitions of the local primary cluster, every producer with ``acks=all``
and ``linger_ms=5`` (librdkafka: ``linger.ms=5``), by

(a) raw ``AIOKafkaProducer.send`` to partition ``i % 6`` without awaiting each delivery,
    then ``flush``: the baseline;
(b) raw aiokafka's public ``create_batch`` / ``send_batch``, a batch per partition in turn:
    the ceiling of what aiokafka can take from Python;
(c) confluent-kafka's ``Producer.produce`` to partition ``i % 6``, then ``flush``;
(d) ``produce_many`` of ``ProducerRecord(topic, payload, partition=i % 6)`` (building the
    records counted: the caller's cost), which waits for every batch and returns every
    message's metadata;
(d') ``produce_many`` with keys (1,000 distinct), partitioned as the Java client does;
(e) ``produce_nowait`` then ``flush``, which must keep up with (a).

Each variant runs ``BENCH_PRODUCE_RUNS`` times (default 3), alternating; medians are
reported with ratios. Targets: ``produce_many`` >= 4 x (a), >= 0.6 x (c); ``produce_nowait``
>= 1.0 x (a). confluent-kafka comes from the ``bench`` extra; without it (c) is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, ProducerRecord
from benchmarks.common import (
    LIBRDKAFKA_FOUND,
    PRIMARY,
    alternate,
    c_extensions,
    median,
    unique,
    versions,
    write_results,
)
from tests.helpers import create_topic

MESSAGES = int(os.environ.get("BENCH_PRODUCE_MESSAGES", "200000"))
RUNS = int(os.environ.get("BENCH_PRODUCE_RUNS", "3"))
PARTITIONS = 6
KEYS = 1000
PAYLOAD = b"x" * 100
SETTINGS: dict[str, Any] = {"acks": "all", "linger_ms": 5}

RAW = "raw aiokafka send + flush"
RAW_BATCHES = "raw aiokafka create_batch/send_batch"
LIBRDKAFKA = "confluent-kafka produce + flush"
MANY = "aiostream-kafka produce_many"
MANY_KEYED = "aiostream-kafka produce_many, keyed"
NOWAIT = "aiostream-kafka produce_nowait + flush"
#: (ours, theirs, target): the ratios the issue asks for.
TARGETS = [(MANY, RAW, 4.0), (MANY, LIBRDKAFKA, 0.6), (NOWAIT, RAW, 1.0)]


async def raw_producer() -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY, **SETTINGS)
    await producer.start()
    return producer


async def produce_raw(topic: str) -> float:
    producer = await raw_producer()
    try:
        await producer.send_and_wait(topic, b"warm-up")
        began = time.perf_counter()
        for i in range(MESSAGES):
            await producer.send(topic, PAYLOAD, partition=i % PARTITIONS)
        await producer.flush()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def produce_raw_batches(topic: str) -> float:
    producer = await raw_producer()
    try:
        await producer.send_and_wait(topic, b"warm-up")
        began = time.perf_counter()
        deliveries, partition, batch = [], 0, producer.create_batch()
        for _ in range(MESSAGES):
            if batch.append(key=None, value=PAYLOAD, timestamp=None) is None:
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                partition, batch = (partition + 1) % PARTITIONS, producer.create_batch()
                batch.append(key=None, value=PAYLOAD, timestamp=None)
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        for delivery in deliveries:
            await delivery
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def produce_librdkafka(topic: str) -> float:
    import confluent_kafka  # only with the bench extra (LIBRDKAFKA_FOUND)

    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": PRIMARY,
            "acks": "all",
            "linger.ms": 5,
            "queue.buffering.max.messages": 2 * MESSAGES,  # never BufferError: one produce a message
        }
    )
    producer.produce(topic, b"warm-up")
    producer.flush()
    began = time.perf_counter()
    for i in range(MESSAGES):
        producer.produce(topic, PAYLOAD, partition=i % PARTITIONS)
    producer.flush()
    return MESSAGES / (time.perf_counter() - began)


async def produce_ours(topic: str, *, way: str) -> float:
    app = App(
        unique("bench-ours"),
        kafka={"bootstrap_servers": PRIMARY, **SETTINGS},
        statistics_interval=None,
    )
    async with app.running():
        producer = app.producer  # held, as the raw loop holds its AIOKafkaProducer
        await producer.produce(topic, b"warm-up")
        began = time.perf_counter()
        if way == "many":
            await producer.produce_many(
                ProducerRecord(topic, PAYLOAD, partition=i % PARTITIONS) for i in range(MESSAGES)
            )
        elif way == "keyed":
            await producer.produce_many(
                ProducerRecord(topic, PAYLOAD, key=b"key-%d" % (i % KEYS)) for i in range(MESSAGES)
            )
        else:
            for i in range(MESSAGES):
                await producer.produce_nowait(topic, PAYLOAD, partition=i % PARTITIONS)
            await producer.flush()
        return MESSAGES / (time.perf_counter() - began)


def summary(rates: dict[str, list[float]]) -> dict[str, Any]:
    raw = median(rates[RAW])
    return {
        "variants": {
            name: {
                "median_msgs_per_s": round(median(values)),
                "ratio_to_raw": round(median(values) / raw, 3),
                "runs_msgs_per_s": [round(v) for v in values],
            }
            for name, values in rates.items()
        },
        "targets": [
            {
                "ours": ours,
                "theirs": theirs,
                "ratio": round(median(rates[ours]) / median(rates[theirs]), 3),
                "target": target,
                "meets_target": median(rates[ours]) / median(rates[theirs]) >= target,
            }
            for ours, theirs, target in TARGETS
            if theirs in rates
        ],
    }


async def run() -> dict[str, Any]:
    topic = unique("bench-produce")
    await create_topic(PRIMARY, topic, PARTITIONS)
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        RAW: lambda: produce_raw(topic),
        RAW_BATCHES: lambda: produce_raw_batches(topic),
        MANY: lambda: produce_ours(topic, way="many"),
        MANY_KEYED: lambda: produce_ours(topic, way="keyed"),
        NOWAIT: lambda: produce_ours(topic, way="nowait"),
    }
    if LIBRDKAFKA_FOUND:
        variants[LIBRDKAFKA] = lambda: produce_librdkafka(topic)
    return {
        "messages": MESSAGES,
        "message_bytes": len(PAYLOAD),
        "partitions": PARTITIONS,
        "runs": RUNS,
        "settings": SETTINGS,
        "aiokafka_c_extensions": c_extensions(),
        "versions": versions("confluent-kafka"),
        "librdkafka": LIBRDKAFKA_FOUND,
        **summary(await alternate(variants, RUNS)),
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("produce", figures)
    print(f"produce, {MESSAGES} messages of {len(PAYLOAD)} bytes, {PARTITIONS} partitions, {RUNS} runs")
    print(f"  (acks=all, linger 5 ms; versions {figures['versions']})")
    if not figures["librdkafka"]:
        print("  confluent-kafka is not installed: its variant was skipped (pip install -e '.[bench]')")
    print(f"  {'':<42} {'msg/s':>9} {'vs raw':>7}  runs")
    for name, f in figures["variants"].items():
        runs = ", ".join(str(r) for r in f["runs_msgs_per_s"])
        print(f"  {name:<42} {f['median_msgs_per_s']:>9} {f['ratio_to_raw']:>7.3f}  {runs}")
    for t in figures["targets"]:
        verdict = "ok" if t["meets_target"] else f"BELOW {t['target']}"
        print(f"  {t['ours']} / {t['theirs']}: {t['ratio']:.3f} x (target {t['target']})  {verdict}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
