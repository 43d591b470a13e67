"""Consuming from two clusters at once against each alone (aggregate throughput).

``BENCH_MULTICLUSTER_MESSAGES`` messages of 100 bytes (default 100,000) are preloaded on a
6-partition topic on each local cluster (primary and secondary). Variants, each consuming
to the end of what it reads:

- aiostream-kafka, the primary's topic alone; the secondary's topic alone; both at once in
  one app (one route per cluster, so one listener per cluster): aggregate msg/s is every
  message read over the time until the last one.
- raw aiokafka (the same-run baseline): the same three, the "both" case being one
  ``getmany`` loop per cluster in one process.

``BENCH_MULTICLUSTER_POLL`` sets the routes' ``max_poll_records`` (default: the framework's
own poll size, ``max_messages`` x ``concurrency`` shared among the process's listeners).

Each variant runs ``BENCH_MULTICLUSTER_RUNS`` times (default 3), alternating; medians are
reported, with both-at-once over the mean of the two alone (how much a second cluster adds)
and ours over raw for each case. One Python process drives both consumers, so "both" is
bounded by one core: on a 2-core machine that also runs both brokers it cannot double.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from aiostream_kafka import App, Messages
from benchmarks.bench_throughput import BATCH, preload
from benchmarks.common import (
    PRIMARY,
    SECONDARY,
    alternate,
    c_extensions,
    median,
    raw_consumer,
    spread,
    unique,
    write_results,
)

MESSAGES = int(os.environ.get("BENCH_MULTICLUSTER_MESSAGES", "100000"))
#: The routes' max_poll_records (unset: the framework's default poll size).
POLL = int(os.environ["BENCH_MULTICLUSTER_POLL"]) if os.environ.get("BENCH_MULTICLUSTER_POLL") else None
RUNS = int(os.environ.get("BENCH_MULTICLUSTER_RUNS", "3"))
CASES = ("primary alone", "secondary alone", "both at once")


class Clock:
    """From the first message to the last, over every cluster read."""

    def __init__(self, expected: int) -> None:
        self.expected, self.count, self.began = expected, 0, 0.0
        self.done = anyio.Event()

    def seen(self, n: int) -> None:
        self.began = self.began or time.perf_counter()
        self.count += n
        if self.count >= self.expected:
            self.done.set()

    def rate(self) -> float:
        return self.count / (time.perf_counter() - self.began)


def clusters_for(case: str, topics: dict[str, str]) -> dict[str, str]:
    if case == "primary alone":
        return {PRIMARY: topics[PRIMARY]}
    if case == "secondary alone":
        return {SECONDARY: topics[SECONDARY]}
    return dict(topics)


async def raw(case: str, topics: dict[str, str]) -> float:
    chosen = clusters_for(case, topics)
    clock = Clock(MESSAGES * len(chosen))

    async def one(bootstrap: str, topic: str) -> None:
        consumer = raw_consumer(topic, bootstrap)
        await consumer.start()
        try:
            read = 0
            while read < MESSAGES:
                batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
                n = sum(len(records) for records in batches.values())
                if n:
                    read += n
                    clock.seen(n)
                    await consumer.commit()
        finally:
            await consumer.stop()

    async with anyio.create_task_group() as group:
        for bootstrap, topic in chosen.items():
            group.start_soon(one, bootstrap, topic)
    return clock.rate()


async def ours(case: str, topics: dict[str, str]) -> float:
    chosen = clusters_for(case, topics)
    clock = Clock(MESSAGES * len(chosen))
    app = App(unique("bench-ours"), kafka={"bootstrap_servers": PRIMARY}, statistics_interval=None)

    async def handle(messages: Messages[bytes]) -> None:
        clock.seen(len(messages))

    for bootstrap, topic in chosen.items():
        app.routes.topic(
            topic,
            handler=handle,
            max_messages=BATCH,
            max_poll_records=POLL,
            kafka={"bootstrap_servers": bootstrap},
        )
    async with app.running():
        with anyio.fail_after(600):
            await clock.done.wait()
        return clock.rate()


async def run() -> dict[str, Any]:
    topics = {PRIMARY: unique("bench-multi-p"), SECONDARY: unique("bench-multi-s")}
    async with anyio.create_task_group() as group:
        for bootstrap, topic in topics.items():
            group.start_soon(preload, topic, MESSAGES, bootstrap)
    variants: dict[str, Callable[[], Awaitable[float]]] = {}
    for case in CASES:
        variants[f"raw aiokafka, {case}"] = functools.partial(raw, case, topics)
        variants[f"aiostream-kafka, {case}"] = functools.partial(ours, case, topics)
    rates = await alternate(variants, RUNS)
    figures: dict[str, Any] = {}
    for who in ("raw aiokafka", "aiostream-kafka"):
        medians = {case: median(rates[f"{who}, {case}"]) for case in CASES}
        alone = (medians["primary alone"] + medians["secondary alone"]) / 2
        figures[who] = {
            **{
                case: {
                    "median_msgs_per_s": round(medians[case]),
                    "runs_msgs_per_s": [round(v) for v in rates[f"{who}, {case}"]],
                }
                for case in CASES
            },
            "both_over_mean_alone": round(medians["both at once"] / alone, 3),
        }
    ratios = {
        case: round(
            median(rates[f"aiostream-kafka, {case}"]) / median(rates[f"raw aiokafka, {case}"]),
            3,
        )
        for case in CASES
    }
    return {
        "messages_per_cluster": MESSAGES,
        "message_bytes": 100,
        "partitions": 6,
        "batch": BATCH,
        "runs": RUNS,
        "clusters": {"primary": PRIMARY, "secondary": SECONDARY},
        "aiokafka_c_extensions": c_extensions(),
        "variants": figures,
        "ours_over_raw": ratios,
        "ours_over_raw_spread": {
            case: spread(
                [
                    o / r
                    for o, r in zip(
                        rates[f"aiostream-kafka, {case}"], rates[f"raw aiokafka, {case}"], strict=True
                    )
                ]
            )
            for case in CASES
        },
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("multicluster", figures)
    print(f"multi-cluster consume, {MESSAGES} messages per cluster, median of {RUNS} runs (msg/s)")
    print(f"  {'':<17} {'raw aiokafka':>13} {'aiostream-kafka':>16} {'ours/raw':>9}")
    for case in CASES:
        raw_rate = figures["variants"]["raw aiokafka"][case]["median_msgs_per_s"]
        our_rate = figures["variants"]["aiostream-kafka"][case]["median_msgs_per_s"]
        print(f"  {case:<17} {raw_rate:>13} {our_rate:>16} {figures['ours_over_raw'][case]:>9.3f}")
    print(
        "  both at once / mean of each alone: raw "
        f"{figures['variants']['raw aiokafka']['both_over_mean_alone']:.2f} x, ours "
        f"{figures['variants']['aiostream-kafka']['both_over_mean_alone']:.2f} x"
    )
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
