"""Memory and idle CPU of one process with 1, 10 and 50 subscription groups.

Each subscription group is its own ``AIOKafkaConsumer`` (on its own 1-partition topic of the
primary cluster, each in its own consumer group so that 50 do not join one group one
after another, a rebalance each). The app runs in a subprocess
(``--serve``), which says when every group has its partition; after ``SETTLE`` seconds the
parent reads the child's CPU time (utime + stime, /proc/<pid>/stat) over
``BENCH_SCALE_WINDOWS`` windows of ``BENCH_SCALE_SECONDS`` (default 3 of 4 s) with no
messages flowing, and its resident memory (VmRSS, /proc/<pid>/status) at the end.

Same-run baseline: raw aiokafka, the same number of consumers in one process, each in a
``getmany(timeout_ms=500)`` loop (the listeners' default wait). Ours runs with its defaults
(logging and OpenTelemetry listeners, statistics every 5 s). Idle CPU is the median of the
windows, in % of one core. Target: under 5% with 50 groups. Most of an idle consumer's
CPU is aiokafka's fetch loop (an empty fetch returns every ``fetch_max_wait_ms``, and the
routine's own timer, ``consumer_timeout_ms``, wakes it in between) and its heartbeats. The
raw baseline has aiokafka's defaults (500 and 200 ms), ours the framework's
(``runtime.listener.CONSUMER_DEFAULTS``: 1,000 and 1,000); ``BENCH_SCALE_FETCH_MAX_WAIT_MS``
sets the fetch wait for both variants.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer

from aiostream_kafka import App, Messages
from aiostream_kafka.runtime.listener import CONSUMER_DEFAULTS
from benchmarks.common import PRIMARY, c_extensions, median, unique, write_results
from tests.helpers import create_topic

GROUPS = tuple(int(n) for n in os.environ.get("BENCH_SCALE_GROUPS", "1,10,50").split(","))
SECONDS = float(os.environ.get("BENCH_SCALE_SECONDS", "4"))
WINDOWS = int(os.environ.get("BENCH_SCALE_WINDOWS", "3"))
SETTLE = 3.0
POLL_MS = 500  # the listeners' default wait (a route's max_wait, 0.5 s)
#: aiokafka's fetch_max_wait_ms for both variants (unset: aiokafka's default, 500 ms): how long
#: the broker holds an empty fetch, so how often each idle consumer asks again.
FETCH_WAIT = os.environ.get("BENCH_SCALE_FETCH_MAX_WAIT_MS")
SETTINGS = {"fetch_max_wait_ms": int(FETCH_WAIT)} if FETCH_WAIT else {}
TARGET_CPU = 5.0  # % of one core, with the most groups
VARIANTS = ("raw aiokafka", "aiostream-kafka")
TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


# --- the measured process ----------------------------------------------------------------


async def until(condition: Callable[[], bool], within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the subscription groups did not all get their partitions")
        await anyio.sleep(0.1)


async def serve(variant: str, prefix: str, groups: int) -> None:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # rebalance chatter while they join
    topics = [f"{prefix}-{i}" for i in range(groups)]
    group_ids = [unique("bench-scale") for _ in topics]
    if variant == "raw aiokafka":
        consumers = [
            AIOKafkaConsumer(
                topic, bootstrap_servers=PRIMARY, group_id=group_id, enable_auto_commit=False, **SETTINGS
            )
            for topic, group_id in zip(topics, group_ids, strict=True)
        ]

        async def poll(consumer: AIOKafkaConsumer) -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=400)
                if batches:
                    await consumer.commit()

        async with anyio.create_task_group() as group:
            for consumer in consumers:
                await consumer.start()
                group.start_soon(poll, consumer)
            await until(lambda: all(consumer.assignment() for consumer in consumers))
            print("ready", flush=True)
        return

    app = App(unique("bench-scale"), kafka={"bootstrap_servers": PRIMARY, **SETTINGS})
    assigned: set[str] = set()
    app.monitor.subscribe("partitions.assigned", lambda event: assigned.update(event["partitions"]))

    async def noop(messages: Messages[bytes]) -> None:
        return None

    for i, (topic, group_id) in enumerate(zip(topics, group_ids, strict=True)):
        with app.routes.subscription_group(f"group-{i}"):
            app.routes.topic(topic, handler=noop, group_id=group_id)
    async with app.running():
        await until(lambda: len(assigned) >= groups)
        print("ready", flush=True)
        await anyio.sleep_forever()


# --- measuring it from outside -----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(variant: str, prefix: str, groups: int) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_scale", "--serve", variant, prefix, str(groups)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        began = time.monotonic()
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{variant} with {groups} groups did not start (exit {child.wait()})")
        ready_after = time.monotonic() - began
        time.sleep(SETTLE)
        windows = []
        for _ in range(WINDOWS):
            cpu, wall = cpu_seconds(child.pid), time.monotonic()
            time.sleep(SECONDS)
            windows.append(100 * (cpu_seconds(child.pid) - cpu) / (time.monotonic() - wall))
        return {
            "idle_cpu_percent": round(median(windows), 2),
            "windows_cpu_percent": [round(w, 2) for w in windows],
            "rss_mib": round(rss_mib(child.pid), 1),
            "ready_after_s": round(ready_after, 1),
        }
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def create_topics(prefix: str, groups: int) -> None:
    for i in range(groups):
        await create_topic(PRIMARY, f"{prefix}-{i}", 1)


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for groups in GROUPS:
        prefix = unique(f"bench-scale-{groups}")
        anyio.run(create_topics, prefix, groups)
        order = VARIANTS if groups % 2 == 0 else tuple(reversed(VARIANTS))
        results = {variant: measure(variant, prefix, groups) for variant in order}
        ours, raw = results["aiostream-kafka"], results["raw aiokafka"]
        figures[str(groups)] = {
            **{variant: results[variant] for variant in VARIANTS},
            "rss_ratio_to_raw": round(ours["rss_mib"] / raw["rss_mib"], 3),
            "idle_cpu_ratio_to_raw": round(ours["idle_cpu_percent"] / max(raw["idle_cpu_percent"], 0.01), 2),
        }
    most = figures[str(max(GROUPS))]["aiostream-kafka"]["idle_cpu_percent"]
    return {
        "groups": list(GROUPS),
        "window_s": SECONDS,
        "windows": WINDOWS,
        "settle_s": SETTLE,
        "aiokafka_c_extensions": c_extensions(),
        "consumer_settings": SETTINGS,
        "our_consumer_defaults": CONSUMER_DEFAULTS,
        "target_idle_cpu_percent": TARGET_CPU,
        "by_groups": figures,
        "meets_target": most < TARGET_CPU,
    }


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        anyio.run(serve, sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    figures = run()
    path = write_results("scale", figures)
    print(f"scale: one process, idle, median of {WINDOWS} windows of {SECONDS:g} s")
    print(f"  {'groups':>6}  {'raw CPU %':>9} {'ours CPU %':>10}  {'raw RSS MiB':>11} {'ours RSS MiB':>12}")
    for groups, f in figures["by_groups"].items():
        raw, ours = f["raw aiokafka"], f["aiostream-kafka"]
        print(
            f"  {groups:>6}  {raw['idle_cpu_percent']:>9.2f} {ours['idle_cpu_percent']:>10.2f}"
            f"  {raw['rss_mib']:>11.1f} {ours['rss_mib']:>12.1f}"
        )
    verdict = "ok" if figures["meets_target"] else "ABOVE"
    print(f"  target: under {TARGET_CPU}% of one core with {max(GROUPS)} groups  {verdict}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
