"""What the benchmarks share: where the local clusters are, fresh names, alternating runs,
medians and ratios, and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import metadata, util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from aiokafka import AIOKafkaConsumer

if TYPE_CHECKING:
    from aiostream_kafka import MonitorEvent

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")
SECONDARY = os.environ.get("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:29092")
RESULTS = Path(__file__).parent / "results"


#: confluent-kafka (librdkafka), the wire's reference; the ``bench`` extra installs it.
LIBRDKAFKA_FOUND = util.find_spec("confluent_kafka") is not None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> list[float]:
    """The lowest and highest run, to show how far runs swing on a shared machine."""
    return [round(min(values), 3), round(max(values), 3)]


async def alternate(variants: dict[str, Callable[[], Awaitable[float]]], runs: int) -> dict[str, list[float]]:
    """Every variant ``runs`` times, in alternating order (forwards, backwards, ...), so that
    a slow spell of the machine does not land on one variant only. Each run starts once what
    the runs before it wrote is on disk: the brokers' writes of one run, flushed by the
    kernel during the next, would otherwise slow whichever variant comes after a heavy one."""
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for run in range(runs):
        order = list(variants) if run % 2 == 0 else list(reversed(variants))
        for name in order:
            await anyio.to_thread.run_sync(os.sync)
            figures[name].append(await variants[name]())
    return figures


def rates(values: list[float], digits: int | None = None) -> dict[str, Any]:
    """A variant's runs in messages a second, as the results file gives them: the median,
    the spread and every run, rounded to ``digits`` (None: whole numbers)."""
    return {
        "median_msgs_per_s": round(median(values), digits),
        "spread_msgs_per_s": [round(v, digits) for v in spread(values)],
        "runs_msgs_per_s": [round(v, digits) for v in values],
    }


def print_rates(variants: dict[str, Any], width: int, rate_width: int) -> None:
    """One line a variant, from what ``rates`` made: its median and its runs."""
    for name, variant in variants.items():
        median_rate, runs = variant["median_msgs_per_s"], variant["runs_msgs_per_s"]
        print(f"  {name:<{width}} {median_rate:>{rate_width}} msg/s  runs {runs}")


class Processed:
    """Counts the messages of processed batches (``batch.processed``) up to ``expected``,
    timed from the first batch (``start``) to the one that completes them: one app's rate."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count, self.began, self.ended = 0, 0.0, 0.0
        self.done = anyio.Event()

    def start(self, event: MonitorEvent | None = None) -> None:
        """Marks the first batch (later calls keep it): a subscriber, or a call from a handler."""
        self.began = self.began or time.perf_counter()

    def counted(self, event: MonitorEvent) -> None:
        """The ``batch.processed`` subscriber."""
        self.count += event["count"]
        if self.count >= self.expected:
            self.ended = time.perf_counter()
            self.done.set()

    async def rate(self) -> float:
        """Messages a second, once all are processed."""
        await self.done.wait()
        return self.expected / (self.ended - self.began)


def c_extensions() -> bool:
    """Whether aiokafka runs with its C extensions (without them it is several times slower,
    aio-libs/aiokafka#514)."""
    from aiokafka.record import default_records

    module: str = default_records.DefaultRecordBatchBuilder.__module__
    return module.startswith("aiokafka.record._crecords")


def versions(*packages: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in ("aiokafka", *packages):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json``: the figures, the machine, and when."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": platform.system(),
            "machine": platform.machine(),
            "load_average_at_end": load_average(),
        },
        **figures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def raw_consumer(topic: str, bootstrap: str = PRIMARY) -> AIOKafkaConsumer:
    """The baseline's consumer: plain aiokafka, a fresh group, from the beginning, no auto commit."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("bench-raw"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
