"""Virtual partitions against none, for an I/O-bound handler on a single partition.

One app consumes a preloaded single-partition topic (batches of 100); its handler awaits
10 ms per message (an I/O call's latency: nothing for the CPU to do). Without virtual
partitions the partition's messages are handled one after another; with
``VirtualPartitions(concurrency=10)`` each batch is split into ten handled at once. The rate
is the messages of processed batches (``batch.processed``) per second, from the first
batch received to the last processed. Runs alternate, so that a slow spell of a shared
machine falls on every variant.

Keyless messages are spread by offset, ten equal shares; keyed ones (1,000 keys) by the
hash of their key, whose shares of a batch of 100 are uneven (the largest takes the
batch's time; larger batches even them out), reported without a target.

Target: virtual partitions with concurrency 10 at least 8 x the throughput without.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Messages, VirtualPartitions
from benchmarks.common import (
    PRIMARY,
    Processed,
    alternate,
    load_average,
    median,
    print_rates,
    rates,
    unique,
    versions,
    write_results,
)
from tests.helpers import create_topic

MESSAGES = int(os.environ.get("BENCH_VIRTUAL_PARTITIONS_MESSAGES", "1500"))
RUNS = int(os.environ.get("BENCH_VIRTUAL_PARTITIONS_RUNS", "3"))
WAIT = 0.010  # seconds the handler awaits per message
BATCH = 100
CONCURRENCY = 10
KEYS = 1000
TARGET = 8.0
NONE = "no virtual partitions"
VIRTUAL = f"virtual partitions, concurrency={CONCURRENCY}"
VIRTUAL_KEYED = f"virtual partitions, concurrency={CONCURRENCY}, {KEYS} keys"
LARGE_BATCH = 500
VIRTUAL_KEYED_LARGE = f"{VIRTUAL_KEYED}, batches of {LARGE_BATCH}"


async def preload(topic: str, *, keyed: bool) -> None:
    await create_topic(PRIMARY, topic, 1)
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY, linger_ms=20)
    await producer.start()
    try:
        for i in range(MESSAGES):
            key = f"key-{i % KEYS}".encode() if keyed else None
            await producer.send(topic, b"x" * 100, key=key, partition=0)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(topic: str, virtual: VirtualPartitions | None, batch: int = BATCH) -> float:
    """Messages per second through the handler, a fresh group reading ``topic`` from the start."""
    app = App(unique("bench-vp"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    processed = Processed(MESSAGES)

    async def handle(messages: Messages[bytes]) -> None:
        for _ in messages:
            await anyio.sleep(WAIT)

    app.routes.topic(topic, handler=handle, max_messages=batch, virtual_partitions=virtual)
    app.monitor.subscribe("batch.received", processed.start)
    app.monitor.subscribe("batch.processed", processed.counted)
    async with app.running():
        with anyio.fail_after(900):
            return await processed.rate()


async def run() -> dict[str, Any]:
    start_load = load_average()
    keyless, keyed = unique("bench-vp-keyless"), unique("bench-vp-keyed")
    await preload(keyless, keyed=False)
    await preload(keyed, keyed=True)
    virtual = VirtualPartitions(concurrency=CONCURRENCY)
    runs = await alternate(
        {
            NONE: lambda: consume(keyless, None),
            VIRTUAL: lambda: consume(keyless, virtual),
            VIRTUAL_KEYED: lambda: consume(keyed, virtual),
            VIRTUAL_KEYED_LARGE: lambda: consume(keyed, virtual, LARGE_BATCH),
        },
        RUNS,
    )
    baseline = median(runs[NONE])
    ratio = median(runs[VIRTUAL]) / baseline
    return {
        "messages": MESSAGES,
        "handler_wait_per_message_s": WAIT,
        "partitions": 1,
        "batch": BATCH,
        "runs": RUNS,
        "target_ratio": TARGET,
        "versions": versions("anyio"),
        "variants": {name: rates(values, 1) for name, values in runs.items()},
        "virtual_partitions_ratio": round(ratio, 2),
        "virtual_partitions_keyed_ratio": round(median(runs[VIRTUAL_KEYED]) / baseline, 2),
        "virtual_partitions_keyed_large_batch_ratio": round(median(runs[VIRTUAL_KEYED_LARGE]) / baseline, 2),
        "load_average_at_start": start_load,
        "meets_target": ratio >= TARGET,
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("virtual_partitions", figures)
    print(
        f"virtual partitions: {MESSAGES} messages on one partition, a handler awaiting "
        f"{WAIT * 1000:.0f} ms a message, batches of {BATCH}, median of {RUNS} runs"
    )
    print_rates(figures["variants"], 62, 8)
    verdict = "meets" if figures["meets_target"] else "MISSES"
    print(
        f"  virtual partitions / none: {figures['virtual_partitions_ratio']} ({verdict} the target {TARGET})"
    )
    print(f"  keyed ({KEYS} keys) / none: {figures['virtual_partitions_keyed_ratio']}")
    large = figures["virtual_partitions_keyed_large_batch_ratio"]
    print(f"  keyed, batches of {LARGE_BATCH} / none: {large}")
    print(f"  -> {path}")


if __name__ == "__main__":
    main()
