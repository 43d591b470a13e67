"""Consume and produce throughput against a tuned raw aiokafka loop and FastStream, same run.

consume: ``BENCH_THROUGHPUT_MESSAGES`` messages of 100 bytes (default 200,000; the issue's
full figure is 1,000,000) preloaded on 6 partitions of the local primary cluster, consumed
to the end by

(a) raw aiokafka: ``getmany(max_records=BATCH)`` and one commit per poll (the baseline);
(a') the same raw loop reading every record's value, and (a'') decoding every value into
    the msgspec Struct: the like-for-like baselines of (b') and (d);
(b) aiostream-kafka with a no-op batch handler, batches of ``BATCH`` and the default
    concurrency (4: polls of up to 4 x BATCH), committed after every batch: the same commit
    cadence and at-least-once window as the raw loop;
(b') aiostream-kafka with a handler that reads every message's value (what iterating the
    ``Message`` objects costs);
(c) FastStream's batch subscriber taking the raw batch (``KafkaMessage``: bodies not
    decoded; FastStream would parse JSON bodies for ``list[bytes]``), ``max_records=BATCH``,
    ``AckPolicy.ACK`` (committed after the handler, like ours), its access log off: its
    best case;
(d) aiostream-kafka decoding every payload into a msgspec Struct (``messages.payloads()``)
    vs FastStream decoding into a pydantic model (``list[ReadingModel]``);
(e) librdkafka (confluent-kafka's ``Consumer.consume(num_messages=BATCH)``, one synchronous
    commit per call): the wire's reference, reported without a target.

produce: the same number of messages by (a) raw ``AIOKafkaProducer.send`` without awaiting
each delivery, then ``flush`` (aiokafka batches them: the baseline), (b) ``produce_nowait``
then ``flush``, (c) ``produce_many`` (which also waits for every delivery and returns the
metadata), (c') raw ``send`` keeping every delivery and awaiting them in order for their
metadata (the like-for-like baseline of (c)), (d) FastStream's publisher,
``publish(no_confirm=True)`` then ``flush``.

Each variant runs ``BENCH_THROUGHPUT_RUNS`` times (default 3), alternating; the median is
reported with the ratio to raw aiokafka's plain loop (a) and, for ours, to the raw loop
doing the same work (``BASELINE``), and every run. Targets: at least 0.95 x raw aiokafka
doing the same work, at least 1.5 x FastStream. FastStream comes from the ``bench`` extra
(``make bench`` installs it); without it those variants are skipped and say so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Messages, ProducerRecord
from benchmarks.common import (
    LIBRDKAFKA_FOUND,
    PRIMARY,
    alternate,
    c_extensions,
    median,
    raw_consumer,
    unique,
    versions,
    write_results,
)
from tests.helpers import create_topic

MESSAGES = int(os.environ.get("BENCH_THROUGHPUT_MESSAGES", "200000"))
RUNS = int(os.environ.get("BENCH_THROUGHPUT_RUNS", "3"))
PARTITIONS = 6
BATCH = 2000
TARGET = 0.95
TARGET_VS_FASTSTREAM = 1.5
RAW = "raw aiokafka"
RAW_READ = "raw aiokafka, reads each record"
RAW_DECODE = "raw aiokafka + msgspec Struct"
RAW_CONFIRMED = "raw aiokafka, awaits every delivery"
#: Each of our variants against raw aiokafka doing the same work (the target's ratio).
BASELINE = {
    "aiostream-kafka": RAW,
    "aiostream-kafka, reads each message": RAW_READ,
    "aiostream-kafka + msgspec Struct": RAW_DECODE,
    "aiostream-kafka produce_nowait": RAW,
    "aiostream-kafka produce_many": RAW_CONFIRMED,
}


class Reading(msgspec.Struct):
    sensor: int
    value: float
    unit: str
    note: str


PAYLOAD = msgspec.json.encode(Reading(7, 21.5, "celsius", "x" * 48))  # 100 bytes
assert len(PAYLOAD) == 100, len(PAYLOAD)

try:
    import pydantic
    from faststream import AckPolicy
    from faststream.kafka import KafkaBroker
    from faststream.kafka.annotations import KafkaMessage

    class ReadingModel(pydantic.BaseModel):
        sensor: int
        value: float
        unit: str
        note: str

    FASTSTREAM = True
except ImportError:  # not installed: `make bench` installs the bench extra
    FASTSTREAM = False

LIBRDKAFKA = "confluent-kafka consume(num_messages)"


async def preload(topic: str, messages: int = MESSAGES, bootstrap: str = PRIMARY) -> None:
    await create_topic(bootstrap, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for i in range(messages):
            await producer.send(topic, PAYLOAD, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


# --- consume -----------------------------------------------------------------------------


async def consume_raw(topic: str, *, handling: str = "none") -> float:
    consumer = raw_consumer(topic)
    decode = msgspec.json.Decoder(Reading).decode
    await consumer.start()
    try:
        count, began = 0, 0.0
        while count < MESSAGES:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            if batches and not began:
                began = time.perf_counter()
            for records in batches.values():
                if handling == "decode":
                    _ = [decode(record.value) for record in records]
                elif handling == "read":
                    for record in records:
                        _ = record.value
                count += len(records)
            if batches:
                await consumer.commit()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await consumer.stop()


async def consume_ours(topic: str, *, handling: str) -> float:
    app = App(unique("bench-ours"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    count, began, done = 0, 0.0, anyio.Event()

    async def handle(messages: Messages[Any]) -> None:
        nonlocal count, began
        began = began or time.perf_counter()
        if handling == "decode":
            messages.payloads()
        elif handling == "read":
            for message in messages:
                _ = message.value
        count += len(messages)
        if count >= MESSAGES:
            done.set()

    payload = Reading if handling == "decode" else bytes
    app.routes.topic(topic, handler=handle, max_messages=BATCH, payload=payload)
    async with app.running():
        with anyio.fail_after(600):
            await done.wait()
        return MESSAGES / (time.perf_counter() - began)


async def consume_faststream(topic: str, *, decode: bool) -> float:
    broker = KafkaBroker(PRIMARY, logger=None)
    count, began, done = 0, 0.0, anyio.Event()

    def counted(n: int) -> None:
        nonlocal count, began
        began = began or time.perf_counter()
        count += n
        if count >= MESSAGES:
            done.set()

    subscriber = broker.subscriber(
        topic,
        batch=True,
        group_id=unique("bench-faststream"),
        auto_offset_reset="earliest",
        max_records=BATCH,
        batch_timeout_ms=500,
        ack_policy=AckPolicy.ACK,
    )
    if decode:

        @subscriber
        async def handle_models(messages: list[ReadingModel]) -> None:
            counted(len(messages))

    else:

        @subscriber
        async def handle_raw(message: KafkaMessage) -> None:  # the batch, bodies not decoded
            counted(len(message.raw_message))

    await broker.start()
    try:
        with anyio.fail_after(600):
            await done.wait()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await broker.stop()


async def consume_librdkafka(topic: str) -> float:
    """librdkafka's batch consume, committing each batch as the raw aiokafka loop does.
    Blocking calls, on the event loop's thread: nothing else runs during the measurement."""
    import confluent_kafka  # only with the bench extra (LIBRDKAFKA_FOUND)

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": PRIMARY,
            "group.id": unique("bench-librdkafka"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    try:
        count, began = 0, 0.0
        while count < MESSAGES:
            batch = consumer.consume(num_messages=BATCH, timeout=0.5)
            records = [m for m in batch if m.error() is None]
            if records and not began:
                began = time.perf_counter()
            count += len(records)
            if records:
                consumer.commit(asynchronous=False)
        return MESSAGES / (time.perf_counter() - began)
    finally:
        consumer.close()


# --- produce -----------------------------------------------------------------------------


async def produce_raw(topic: str, *, confirmed: bool = False) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")
        began = time.perf_counter()
        if confirmed:  # what produce_many does: every delivery's metadata, in order
            deliveries = [
                await producer.send(topic, PAYLOAD, partition=i % PARTITIONS) for i in range(MESSAGES)
            ]
            _ = [await delivery for delivery in deliveries]
        else:
            for i in range(MESSAGES):
                await producer.send(topic, PAYLOAD, partition=i % PARTITIONS)
            await producer.flush()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def produce_ours(topic: str, *, many: bool) -> float:
    app = App(unique("bench-ours"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    async with app.running():
        producer = app.producer  # held, as the raw loop holds its AIOKafkaProducer
        await producer.produce(topic, b"warm-up")
        began = time.perf_counter()
        if many:
            await producer.produce_many(
                ProducerRecord(topic, PAYLOAD, partition=i % PARTITIONS) for i in range(MESSAGES)
            )
        else:
            for i in range(MESSAGES):
                await producer.produce_nowait(topic, PAYLOAD, partition=i % PARTITIONS)
            await producer.flush()
        return MESSAGES / (time.perf_counter() - began)


async def produce_faststream(topic: str) -> float:
    broker = KafkaBroker(PRIMARY, logger=None)
    publisher = broker.publisher(topic)
    await broker.start()
    try:
        await publisher.publish(b"warm-up")
        began = time.perf_counter()
        for i in range(MESSAGES):
            await publisher.publish(PAYLOAD, partition=i % PARTITIONS, no_confirm=True)
        await publisher.flush()
        return MESSAGES / (time.perf_counter() - began)
    finally:
        await broker.stop()


# --- the comparison ----------------------------------------------------------------------


def summary(rates: dict[str, list[float]], versus: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Medians, the ratio of each to raw aiokafka's plain loop and, for ours, to raw aiokafka
    doing the same work (the target), and ours against FastStream's."""
    raw = median(rates[RAW])
    variants: dict[str, dict[str, Any]] = {}
    for name, values in rates.items():
        variants[name] = {
            "median_msgs_per_s": round(median(values)),
            "ratio_to_raw": round(median(values) / raw, 3),
            "runs_msgs_per_s": [round(v) for v in values],
        }
        if name in BASELINE:
            same_work = median(values) / median(rates[BASELINE[name]])
            variants[name] |= {
                "baseline": BASELINE[name],
                "ratio_to_baseline": round(same_work, 3),
                "meets_target": same_work >= TARGET,
            }
    against = {
        f"{ours} / {theirs}": {
            "ratio": round(median(rates[ours]) / median(rates[theirs]), 2),
            "meets_target": median(rates[ours]) / median(rates[theirs]) >= TARGET_VS_FASTSTREAM,
        }
        for ours, theirs in versus.values()
        if theirs in rates
    }
    return {"variants": variants, "versus_faststream": against}


async def run() -> dict[str, Any]:
    source, sink = unique("bench-consume"), unique("bench-produce")
    await preload(source)
    await create_topic(PRIMARY, sink, PARTITIONS)
    consume: dict[str, Callable[[], Awaitable[float]]] = {
        RAW: lambda: consume_raw(source),
        RAW_READ: lambda: consume_raw(source, handling="read"),
        RAW_DECODE: lambda: consume_raw(source, handling="decode"),
        "aiostream-kafka": lambda: consume_ours(source, handling="none"),
        "aiostream-kafka, reads each message": lambda: consume_ours(source, handling="read"),
        "aiostream-kafka + msgspec Struct": lambda: consume_ours(source, handling="decode"),
    }
    produce: dict[str, Callable[[], Awaitable[float]]] = {
        RAW: lambda: produce_raw(sink),
        RAW_CONFIRMED: lambda: produce_raw(sink, confirmed=True),
        "aiostream-kafka produce_nowait": lambda: produce_ours(sink, many=False),
        "aiostream-kafka produce_many": lambda: produce_ours(sink, many=True),
    }
    if FASTSTREAM:
        consume["FastStream"] = lambda: consume_faststream(source, decode=False)
        consume["FastStream + pydantic model"] = lambda: consume_faststream(source, decode=True)
        produce["FastStream publisher"] = lambda: produce_faststream(sink)
    if LIBRDKAFKA_FOUND:
        consume[LIBRDKAFKA] = lambda: consume_librdkafka(source)
    return {
        "messages": MESSAGES,
        "message_bytes": len(PAYLOAD),
        "partitions": PARTITIONS,
        "batch": BATCH,
        "runs": RUNS,
        "target_ratio_to_raw": TARGET,
        "target_ratio_to_faststream": TARGET_VS_FASTSTREAM,
        "aiokafka_c_extensions": c_extensions(),
        "versions": versions("faststream", "pydantic", "msgspec"),
        "faststream": FASTSTREAM,
        "librdkafka": LIBRDKAFKA_FOUND,
        "consume": summary(
            await alternate(consume, RUNS),
            {
                "no-op": ("aiostream-kafka", "FastStream"),
                "decoded": ("aiostream-kafka + msgspec Struct", "FastStream + pydantic model"),
            },
        ),
        "produce": summary(
            await alternate(produce, RUNS),
            {
                "per message": ("aiostream-kafka produce_nowait", "FastStream publisher"),
                "many": ("aiostream-kafka produce_many", "FastStream publisher"),
            },
        ),
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("throughput", figures)
    extensions = "with" if figures["aiokafka_c_extensions"] else "WITHOUT"
    print(
        f"throughput, {MESSAGES} messages of {len(PAYLOAD)} bytes, batches of {BATCH}, median of {RUNS} runs"
    )
    print(f"  ({extensions} aiokafka's C extensions; versions {figures['versions']})")
    print(
        f"  targets: at least {TARGET} x raw aiokafka doing the same work (vs same), "
        f"{TARGET_VS_FASTSTREAM} x FastStream"
    )
    if not figures["faststream"]:
        print("  FastStream is not installed: its variants were skipped (pip install -e '.[bench]')")
    print(f"  {'':<54} {'msg/s':>9} {'vs raw':>7} {'vs same':>7}  runs")
    for workload in ("consume", "produce"):
        for name, f in figures[workload]["variants"].items():
            same, verdict = "", ""
            if "ratio_to_baseline" in f:
                same = f"{f['ratio_to_baseline']:.3f}"
                verdict = "  ok" if f["meets_target"] else f"  BELOW {TARGET}"
            runs = ", ".join(str(r) for r in f["runs_msgs_per_s"])
            label = f"{workload}: {name}"
            rate, vs_raw = f["median_msgs_per_s"], f["ratio_to_raw"]
            print(f"  {label:<54} {rate:>9} {vs_raw:>7.3f} {same:>7}  {runs}{verdict}")
        for pair, f in figures[workload]["versus_faststream"].items():
            verdict = "ok" if f["meets_target"] else f"BELOW {TARGET_VS_FASTSTREAM}"
            print(f"  {workload}: {pair}: {f['ratio']:.2f} x  {verdict}")
    consumed = figures["consume"]["variants"]
    if LIBRDKAFKA in consumed:
        ratio = consumed["aiostream-kafka"]["median_msgs_per_s"] / consumed[LIBRDKAFKA]["median_msgs_per_s"]
        print(f"  consume: aiostream-kafka / {LIBRDKAFKA}: {ratio:.2f} x  (the wire's reference)")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
