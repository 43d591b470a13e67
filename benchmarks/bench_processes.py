"""A CPU-bound handler under ``run --processes 1`` and ``--processes 2``, in the same run.

``BENCH_PROCESSES_MESSAGES`` messages (default 60,000; 100 bytes of JSON) preloaded on 12
partitions of the local primary cluster are consumed by ``benchmarks/cpu_app.py`` run
through the CLI, as deployed: every payload is decoded into a msgspec Struct and churned
on for ``BENCH_CPU_ROUNDS`` rounds of pure Python (default 4,000, about 0.4 ms), so one
process is bound by its one core. Each run uses a fresh consumer group; progress is the
group's committed offsets, polled every 0.1 s from here (nothing in the app is there for
the benchmark), and the run ends when every partition is committed to its end.

Throughput is the steady rate, from 20% to 80% of the workload committed: interpreter
start-up, the rebalance when the second worker joins and the tail where one worker
finishes before the other are the same few seconds whatever the workload's size, so
they are left out of the verdict and reported apart (first commit to last, and launch
to done).

``--processes 1`` is the baseline (the same parent and worker, one of them); the verdict
is the median ratio of 2 processes to 1 over ``BENCH_PROCESSES_RUNS`` alternating runs
(default 3). Target: at least 1.7 on 2 cores. Where the CPU went during the steady window
is recorded too (Linux): the app's processes, the brokers (every JVM on the machine), and
everything else. On a 2-core machine the brokers and any other tenant take their share
of the same two cores, and the workers get what is left; so the throughput per CPU second
the app got is reported as well, and its ratio (about 1.0 when processes scale with the
CPU they are given) separates the framework from the neighbours.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from benchmarks.common import PRIMARY, median, unique, write_results
from benchmarks.cpu_app import Reading
from tests.helpers import create_topic

MESSAGES = int(os.environ.get("BENCH_PROCESSES_MESSAGES", "60000"))
ROUNDS = int(os.environ.get("BENCH_CPU_ROUNDS", "4000"))
RUNS = int(os.environ.get("BENCH_PROCESSES_RUNS", "3"))
PARTITIONS = 12
TARGET = 1.7
STEADY = (0.2, 0.8)  # throughput is measured between these fractions of the workload committed
ROOT = Path(__file__).resolve().parents[1]

PAYLOAD = msgspec.json.encode(Reading(7, 21.5, "celsius", "x" * 48))


async def preload(topic: str) -> None:
    await create_topic(PRIMARY, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY, linger_ms=20)
    await producer.start()
    try:
        for i in range(MESSAGES):
            await producer.send(topic, PAYLOAD, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


async def committed(admin: AIOKafkaAdminClient, group: str) -> int:
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
        return 0  # a group this new may have no coordinator yet: nothing committed so far
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


# --- where the CPU went (Linux /proc; None elsewhere) ----------------------------------------


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far: by the whole machine, the app (parent and workers), the Kafka
    brokers (every JVM on the machine) and this benchmark process."""

    machine: float
    app: float
    brokers: float
    benchmark: float

    @classmethod
    def now(cls, parent: int) -> Cpu | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            stats = {
                int(d.name): (d / "stat").read_text() for d in Path("/proc").iterdir() if d.name.isdigit()
            }
        except OSError:
            return None
        tick = os.sysconf("SC_CLK_TCK")

        def used(stat: str) -> float:  # utime + stime, after the ")" that ends the command name
            after = stat.rsplit(")", 1)[1].split()
            return (int(after[11]) + int(after[12])) / tick

        def parent_of(stat: str) -> int:
            return int(stat.rsplit(")", 1)[1].split()[1])

        app = [stat for pid, stat in stats.items() if pid == parent or parent_of(stat) == parent]
        brokers = [stat for stat in stats.values() if "(java)" in stat]
        self = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            machine=(sum(fields[:8]) - fields[3] - fields[4]) / tick,  # all but idle and iowait
            app=sum(map(used, app)),
            brokers=sum(map(used, brokers)),
            benchmark=self.ru_utime + self.ru_stime,
        )

    def per_second_since(self, earlier: Cpu, seconds: float) -> dict[str, float]:
        """CPUs busy on average in between: what each took of the machine's cores."""
        shares = {
            "machine": self.machine - earlier.machine,
            "app": self.app - earlier.app,
            "brokers": self.brokers - earlier.brokers,
            "benchmark": self.benchmark - earlier.benchmark,
        }
        shares["other"] = shares["machine"] - shares["app"] - shares["brokers"] - shares["benchmark"]
        return {name: value / seconds for name, value in shares.items()}


@dataclass(frozen=True)
class Mark:
    at: float
    committed: int
    cpu: Cpu | None


async def consume(topic: str, processes: int, log: Path) -> dict[str, Any]:
    """One run: start the app with ``--processes``, follow its commits to the end, stop it."""
    group = unique("bench-cpu")
    env = {
        **os.environ,
        "BENCH_CPU_BOOTSTRAP": PRIMARY,
        "BENCH_CPU_TOPIC": topic,
        "BENCH_CPU_GROUP": group,
        "BENCH_CPU_ROUNDS": str(ROUNDS),
    }
    command = [sys.executable, "-m", "aiostream_kafka", "run", "benchmarks.cpu_app:app"]
    command += ["--processes", str(processes), "--log-level", "warning"]
    admin = AIOKafkaAdminClient(bootstrap_servers=PRIMARY)
    await admin.start()
    with log.open("ab") as out:
        launched = time.perf_counter()
        parent = await anyio.open_process(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    marks: dict[str, Mark] = {}  # first commit, steady begins, steady ends, last commit
    try:
        with anyio.fail_after(900):
            count = 0
            while count < MESSAGES:
                if parent.returncode is not None:
                    raise RuntimeError(f"the app exited with {parent.returncode}; see {log}")
                await anyio.sleep(0.1)
                count = await committed(admin, group)
                at = time.perf_counter()
                for name, fraction in (
                    ("first", 1e-9),
                    ("begin", STEADY[0]),
                    ("end", STEADY[1]),
                    ("last", 1),
                ):
                    if name not in marks and count >= fraction * MESSAGES:
                        marks[name] = Mark(
                            at, count, Cpu.now(parent.pid) if name in ("begin", "end") else None
                        )
    finally:
        if parent.returncode is None:
            parent.send_signal(signal.SIGTERM)
        with anyio.fail_after(120):
            await parent.wait()
        await admin.close()
    first, begin, end, last = marks["first"], marks["begin"], marks["end"], marks["last"]
    steady = end.at - begin.at
    rate = (end.committed - begin.committed) / steady
    cpus = end.cpu.per_second_since(begin.cpu, steady) if end.cpu and begin.cpu else None
    return {
        "msgs_per_s": rate,
        "first_to_last_commit_msgs_per_s": (last.committed - first.committed) / (last.at - first.at),
        "seconds_from_launch": last.at - launched,
        "steady_cpus": cpus,
        "msgs_per_app_cpu_second": rate / cpus["app"] if cpus else None,
    }


async def run() -> dict[str, Any]:
    topic = unique("bench-processes")
    await preload(topic)
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-processes-") as logs:
        for run in range(RUNS):
            for processes in (1, 2) if run % 2 == 0 else (2, 1):
                log = Path(logs) / f"run{run}-p{processes}.log"
                results[processes].append(await consume(topic, processes, log))

    def middle(processes: int, figure: str) -> float:
        return median([r[figure] for r in results[processes]])

    def summary(processes: int) -> dict[str, Any]:
        runs = results[processes]
        cpus = [r["steady_cpus"] for r in runs if r["steady_cpus"] is not None]
        return {
            "median_msgs_per_s": round(middle(processes, "msgs_per_s")),
            "ratio_to_1_process": round(middle(processes, "msgs_per_s") / middle(1, "msgs_per_s"), 3),
            "runs": [round(r["msgs_per_s"]) for r in runs],
            "median_first_to_last_commit_msgs_per_s": round(
                middle(processes, "first_to_last_commit_msgs_per_s")
            ),
            "first_to_last_commit_ratio": round(
                middle(processes, "first_to_last_commit_msgs_per_s")
                / middle(1, "first_to_last_commit_msgs_per_s"),
                3,
            ),
            "median_seconds_from_launch": round(middle(processes, "seconds_from_launch"), 2),
            # CPUs in use on average during the steady window, median over the runs.
            "steady_cpus": {name: round(median([c[name] for c in cpus]), 2) for name in cpus[0]}
            if cpus
            else None,
            **per_cpu(processes),
        }

    def per_cpu(processes: int) -> dict[str, Any]:
        """Throughput per CPU second the app's processes got: whether they scale with the CPU
        they are given, whatever other tenants of the machine took."""
        if any(r["msgs_per_app_cpu_second"] is None for r in results[1] + results[2]):
            return {}
        efficiency = middle(processes, "msgs_per_app_cpu_second")
        return {
            "median_msgs_per_app_cpu_second": round(efficiency),
            "per_cpu_ratio_to_1_process": round(efficiency / middle(1, "msgs_per_app_cpu_second"), 3),
        }

    two = summary(2)
    return {
        "messages": MESSAGES,
        "partitions": PARTITIONS,
        "cpu_rounds_per_message": ROUNDS,
        "runs": RUNS,
        "steady_window": list(STEADY),
        "target_ratio": TARGET,
        "processes": {"1": summary(1), "2": two},
        "meets_target": two["ratio_to_1_process"] >= TARGET,
    }


def main() -> None:
    figures = anyio.run(run)
    path = write_results("processes", figures)
    print(
        f"processes, {MESSAGES} messages on {PARTITIONS} partitions, msgspec decode + {ROUNDS} rounds "
        f"of CPU work each, median of {RUNS} runs (target: 2 processes at least {TARGET} x 1)"
    )
    print("  steady: 20% to 80% committed; end to end: first commit to last")
    header = f"{'steady msg/s':>12} {'vs 1':>6} {'end to end':>10} {'vs 1':>6} {'launch->done':>12}"
    print(f"  {'':<15} {header}  runs")
    for processes, f in figures["processes"].items():
        verdict = ""
        if processes == "2":
            verdict = "  ok" if figures["meets_target"] else f"  BELOW {TARGET}"
        runs = ", ".join(str(r) for r in f["runs"])
        print(
            f"  {'--processes ' + processes:<15} {f['median_msgs_per_s']:>12} {f['ratio_to_1_process']:>6.3f}"
            f" {f['median_first_to_last_commit_msgs_per_s']:>10} {f['first_to_last_commit_ratio']:>6.3f}"
            f" {f['median_seconds_from_launch']:>11.1f}s  {runs}{verdict}"
        )
    if all(f["steady_cpus"] for f in figures["processes"].values()):
        print("  CPUs in use while steady (of the machine's), and throughput per CPU second the app got")
        print(f"  {'':<15} {'app':>5} {'brokers':>7} {'other':>6} {'msg/app CPU-s':>13} {'vs 1':>6}")
        for processes, f in figures["processes"].items():
            cpus = f["steady_cpus"]
            print(
                f"  {'--processes ' + processes:<15} {cpus['app']:>5.2f} {cpus['brokers']:>7.2f}"
                f" {cpus['other'] + cpus['benchmark']:>6.2f} {f['median_msgs_per_app_cpu_second']:>13}"
                f" {f['per_cpu_ratio_to_1_process']:>6.3f}"
            )
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
