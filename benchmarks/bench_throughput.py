"""Consume and produce throughput against a tuned raw aiokafka loop, in the same run.

consume: ``BENCH_THROUGHPUT_MESSAGES`` messages of 100 bytes (default 200,000; the issue's
full figure is 1,000,000) preloaded on 6 partitions of the local primary cluster, consumed
to the end by (a) a raw ``getmany`` loop with ``max_records`` and one commit per poll (the
baseline), (b) aiostream-kafka with a no-op batch handler, (c) aiostream-kafka decoding
every payload into a msgspec Struct.

produce: the same number of messages by (a) raw ``AIOKafkaProducer.send`` without awaiting
each delivery, then ``flush`` (the baseline), (b) ``produce_nowait`` then ``flush``, (c)
``produce_many``.

Each variant runs ``BENCH_THROUGHPUT_RUNS`` times (default 3), alternating; the median is
reported with the ratio to the baseline's median and the spread of the runs. Target: every
ratio at least 0.95. Results also say whether aiokafka's C extensions are in use (without
them aiokafka is several times slower, aio-libs/aiokafka#514).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from aiostream_kafka import App, Messages, ProducerRecord
from benchmarks.common import PRIMARY, median, unique, write_results
from tests.helpers import create_topic

MESSAGES = int(os.environ.get("BENCH_THROUGHPUT_MESSAGES", "200000"))
RUNS = int(os.environ.get("BENCH_THROUGHPUT_RUNS", "3"))
PARTITIONS = 6
BATCH = 500
TARGET = 0.95


class Reading(msgspec.Struct):
    sensor: int
    value: float
    unit: str
    note: str


PAYLOAD = msgspec.json.encode(Reading(7, 21.5, "celsius", "x" * 48))  # 100 bytes
assert len(PAYLOAD) == 100, len(PAYLOAD)


def c_extensions() -> bool:
    from aiokafka.record import default_records

    return default_records.DefaultRecordBatchBuilder.__module__.startswith("aiokafka.record._crecords")


async def preload(topic: str) -> None:
    await create_topic(PRIMARY, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for i in range(MESSAGES):
            await producer.send(topic, PAYLOAD, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


# --- consume -----------------------------------------------------------------------------


async def consume_raw(topic: str) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=PRIMARY,
        group_id=unique("bench-raw"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        count, began = 0, 0.0
        while count < MESSAGES:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH * 4)
            if batches and not began:
                began = time.perf_counter()
            count += sum(len(records) for records in batches.values())
            if batches:
                await consumer.commit()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await consumer.stop()


async def consume_ours(topic: str, *, decode: bool) -> float:
    app = App(unique("bench-ours"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    count, began, done = 0, 0.0, anyio.Event()

    async def handle(messages: Messages[Any]) -> None:
        nonlocal count, began
        began = began or time.perf_counter()
        if decode:
            messages.payloads()
        count += len(messages)
        if count >= MESSAGES:
            done.set()

    app.routes.topic(topic, handler=handle, max_messages=BATCH, payload=Reading if decode else bytes)
    async with app.running():
        with anyio.fail_after(600):
            await done.wait()
        return MESSAGES / (time.perf_counter() - began)


# --- produce -----------------------------------------------------------------------------


async def produce_raw(topic: str) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")
        began = time.perf_counter()
        for i in range(MESSAGES):
            await producer.send(topic, PAYLOAD, partition=i % PARTITIONS)
        await producer.flush()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def produce_ours(topic: str, *, many: bool) -> float:
    app = App(unique("bench-ours"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    async with app.running():
        await app.producer.produce(topic, b"warm-up")
        began = time.perf_counter()
        if many:
            await app.producer.produce_many(
                ProducerRecord(topic, PAYLOAD, partition=i % PARTITIONS) for i in range(MESSAGES)
            )
        else:
            for i in range(MESSAGES):
                await app.producer.produce_nowait(topic, PAYLOAD, partition=i % PARTITIONS)
            await app.producer.flush()
        return MESSAGES / (time.perf_counter() - began)


async def compare(variants: dict[str, Callable[[], Awaitable[float]]]) -> dict[str, Any]:
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for run in range(RUNS):
        order = list(variants) if run % 2 == 0 else list(reversed(variants))
        for name in order:
            rates[name].append(await variants[name]())
    baseline = median(rates["raw aiokafka"])
    return {
        name: {
            "median_msgs_per_s": round(median(values)),
            "ratio_to_raw": round(median(values) / baseline, 3),
            "runs": [round(v) for v in values],
            "meets_target": name == "raw aiokafka" or median(values) / baseline >= TARGET,
        }
        for name, values in rates.items()
    }


async def run() -> dict[str, Any]:
    source, sink = unique("bench-consume"), unique("bench-produce")
    await preload(source)
    await create_topic(PRIMARY, sink, PARTITIONS)
    return {
        "messages": MESSAGES,
        "message_bytes": len(PAYLOAD),
        "partitions": PARTITIONS,
        "runs": RUNS,
        "target_ratio": TARGET,
        "aiokafka_c_extensions": c_extensions(),
        "consume": await compare(
            {
                "raw aiokafka": lambda: consume_raw(source),
                "aiostream-kafka": lambda: consume_ours(source, decode=False),
                "aiostream-kafka + msgspec Struct": lambda: consume_ours(source, decode=True),
            }
        ),
        "produce": await compare(
            {
                "raw aiokafka": lambda: produce_raw(sink),
                "aiostream-kafka produce_nowait": lambda: produce_ours(sink, many=False),
                "aiostream-kafka produce_many": lambda: produce_ours(sink, many=True),
            }
        ),
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("throughput", figures)
    extensions = "with" if figures["aiokafka_c_extensions"] else "WITHOUT"
    print(f"throughput, {MESSAGES} messages of {len(PAYLOAD)} bytes, median of {RUNS} runs")
    print(f"  ({extensions} aiokafka's C extensions; target: at least {TARGET} x raw aiokafka)")
    print(f"  {'':<42} {'msg/s':>9} {'vs raw':>7}  runs")
    for workload in ("consume", "produce"):
        for name, f in figures[workload].items():
            verdict = "" if name == "raw aiokafka" else ("  ok" if f["meets_target"] else f"  BELOW {TARGET}")
            runs = ", ".join(str(r) for r in f["runs"])
            label = f"{workload}: {name}"
            print(f"  {label:<42} {f['median_msgs_per_s']:>9} {f['ratio_to_raw']:>7.3f}  {runs}{verdict}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
