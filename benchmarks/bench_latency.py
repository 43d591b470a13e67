"""Produce -> handler latency at a steady rate, aiostream-kafka against raw aiokafka.

One plain ``AIOKafkaProducer`` (``linger_ms=0``) sends ``BENCH_LATENCY_RATE`` messages a
second (default 1,000) for ``BENCH_LATENCY_SECONDS`` (default 8) to a fresh 3-partition
topic on the primary cluster, each carrying the ``perf_counter_ns`` of its send. The
consumer in the same process notes, per message, how long ago that was when the handler
got it: (a) raw aiokafka, a ``getmany`` loop committing after each poll (the baseline);
(b) aiostream-kafka, a batch handler with the route's defaults (``max_messages=100``),
which also commits after each batch. Both consumers have the same aiokafka fetch settings
(the defaults). The first second is warm-up and not counted; sending starts once the
consumer has its partitions.

Each variant runs ``BENCH_LATENCY_RUNS`` times (default 3), alternating; p50 and p99 are the
medians over runs. Target: our p99 at most 1.2 x raw's.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Messages
from benchmarks.common import PRIMARY, c_extensions, median, raw_consumer, spread, unique, write_results
from tests.helpers import create_topic

RATE = int(os.environ.get("BENCH_LATENCY_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "8"))
RUNS = int(os.environ.get("BENCH_LATENCY_RUNS", "3"))
WARM_UP = 1.0
PARTITIONS = 3
TARGET_P99 = 1.2
RAW = "raw aiokafka"
STAMP = struct.Struct(">q")
FILLER = b"x" * 92  # 100-byte messages


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Run:
    """One run's latencies (ms), and when to stop."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.expected = int(RATE * SECONDS)
        self.received = 0
        self.assigned = anyio.Event()
        self.done = anyio.Event()

    def seen(self, values: Sequence[bytes | None]) -> None:
        now = time.perf_counter_ns()
        for value in values:
            assert value is not None
            sent, index = STAMP.unpack_from(value)[0], STAMP.unpack_from(value, 8)[0]
            if index >= RATE * WARM_UP:
                self.latencies.append((now - sent) / 1e6)
        self.received += len(values)
        if self.received >= self.expected:
            self.done.set()


async def send_steadily(topic: str, run: Run) -> None:
    """``RATE`` messages a second: each goes out at its own time (t0 + i / RATE)."""
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY, linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(topic, STAMP.pack(0) + STAMP.pack(-1) + FILLER[8:], partition=0)
        began = time.perf_counter()
        for i in range(run.expected):
            delay = began + i / RATE - time.perf_counter()
            if delay > 0:
                await anyio.sleep(delay)
            value = STAMP.pack(time.perf_counter_ns()) + STAMP.pack(i) + FILLER[8:]
            await producer.send(topic, value, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


async def measure(consume: Callable[[str, Run], Coroutine[Any, Any, None]]) -> dict[str, float]:
    topic = unique("bench-latency")
    await create_topic(PRIMARY, topic, PARTITIONS)
    run = Run()
    run.expected += 1  # the first message, sent before the clock starts, is counted too
    async with anyio.create_task_group() as group:
        group.start_soon(consume, topic, run)
        with anyio.fail_after(60):
            await run.assigned.wait()
        await send_steadily(topic, run)
        with anyio.fail_after(60):
            await run.done.wait()
        group.cancel_scope.cancel()
    return {"p50_ms": percentile(run.latencies, 0.50), "p99_ms": percentile(run.latencies, 0.99)}


async def consume_raw(topic: str, run: Run) -> None:
    consumer = raw_consumer(topic)
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=100 * 4)
            if consumer.assignment():
                run.assigned.set()
            if batches:
                for records in batches.values():
                    run.seen([record.value for record in records])
                await consumer.commit()
    finally:
        with anyio.CancelScope(shield=True):
            await consumer.stop()


async def consume_ours(topic: str, run: Run) -> None:
    app = App(unique("bench-ours"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)
    app.monitor.subscribe("partitions.assigned", lambda event: run.assigned.set())

    @app.route(topic)
    async def handle(messages: Messages[bytes]) -> None:
        run.seen(messages.payloads())

    async with app.running():
        await anyio.sleep_forever()


async def run() -> dict[str, Any]:
    variants: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
        RAW: lambda: measure(consume_raw),
        "aiostream-kafka": lambda: measure(consume_ours),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for index in range(RUNS):
        for name in list(variants) if index % 2 == 0 else list(reversed(variants)):
            runs[name].append(await variants[name]())
    figures: dict[str, dict[str, Any]] = {
        name: {
            "p50_ms": round(median([r["p50_ms"] for r in results]), 2),
            "p99_ms": round(median([r["p99_ms"] for r in results]), 2),
            "p99_spread_ms": spread([r["p99_ms"] for r in results]),
            "runs": [{k: round(v, 2) for k, v in r.items()} for r in results],
        }
        for name, results in runs.items()
    }
    ours: dict[str, float] = figures["aiostream-kafka"]
    raw: dict[str, float] = figures[RAW]
    return {
        "rate_per_s": RATE,
        "seconds": SECONDS,
        "warm_up_s": WARM_UP,
        "partitions": PARTITIONS,
        "runs": RUNS,
        "aiokafka_c_extensions": c_extensions(),
        "target_p99_ratio": TARGET_P99,
        "variants": figures,
        "p50_ratio_to_raw": round(ours["p50_ms"] / raw["p50_ms"], 3),
        "p99_ratio_to_raw": round(ours["p99_ms"] / raw["p99_ms"], 3),
        "meets_target": ours["p99_ms"] / raw["p99_ms"] <= TARGET_P99,
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("latency", figures)
    print(f"latency, produce -> handler at {RATE} msg/s for {SECONDS:g} s, median of {RUNS} runs")
    print(f"  {'':<20} {'p50 ms':>8} {'p99 ms':>8}  p99 runs")
    for name, f in figures["variants"].items():
        runs = ", ".join(f"{r['p99_ms']:.2f}" for r in f["runs"])
        print(f"  {name:<20} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f}  {runs}")
    verdict = "ok" if figures["meets_target"] else f"ABOVE {TARGET_P99}"
    print(
        f"  ours / raw: p50 {figures['p50_ratio_to_raw']:.2f} x, p99 {figures['p99_ratio_to_raw']:.2f} x"
        f" (target p99 <= {TARGET_P99} x)  {verdict}"
    )
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
