"""The probes of a ``run --processes N`` parent, which answers for its workers.

Each worker serves its own probes on a Unix socket the parent named (no port per worker);
the parent asks them all at each probe, at once:

- live: the parent's own loop runs and the pool has not given up on a worker that keeps
  failing. A worker whose loop is stuck is the pool's to replace (its heartbeat stops), not
  a reason to restart every worker of the machine.
- ready: all N workers run, have joined their groups, and each says it is ready; otherwise
  each problem, prefixed with the worker's name (``worker-2: cluster 'secondary' is ...``).
- metrics: every worker's series with a ``worker`` label added (a series per worker, as a
  scraper gets from N pods; ``sum without (worker)`` adds them up), and the pool's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from aiostream_kafka.probes.client import fetch
from aiostream_kafka.probes.health import STUCK_AFTER, LoopTicker
from aiostream_kafka.probes.metrics import PREFIX, missing
from aiostream_kafka.probes.verdict import Verdict

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


class RunningWorker(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def pid(self) -> int: ...


class WorkerPool(Protocol):
    """What the probes read of ``runtime.workers.WorkerPool``."""

    @property
    def processes(self) -> int: ...

    @property
    def gave_up(self) -> str | None: ...

    @property
    def stopping(self) -> bool: ...

    def worker(self, number: int) -> RunningWorker | None: ...


#: How long a worker's probe server may take to answer the parent (it answers from a thread
#: of its own, so a worker busy or stuck on its loop still answers at once).
WORKER_TIMEOUT = 2.0
TEXT_FORMAT = "text/plain; version=0.0.4"


class PoolProbes:
    def __init__(
        self,
        pool: WorkerPool,
        socket_of: Callable[[int], str],
        ticker: LoopTicker,
        *,
        timeout: float = WORKER_TIMEOUT,
    ) -> None:
        self._pool = pool
        self._socket_of = socket_of
        self._ticker = ticker
        self._timeout = timeout
        self._missing = missing()

    def liveness(self) -> Verdict:
        problems = []
        if self._pool.gave_up is not None:
            problems.append(f"the worker pool gave up: {self._pool.gave_up}")
        silent = self._ticker.silent_for()
        if silent >= STUCK_AFTER:
            problems.append(f"the parent's event loop has not run for {silent:.1f}s")
        return Verdict("live", not problems, tuple(problems), {"processes": self._pool.processes})

    def readiness(self) -> Verdict:
        if self._pool.stopping:
            return Verdict("ready", False, ("the workers are stopping",))
        numbers = range(1, self._pool.processes + 1)
        with ThreadPoolExecutor(max_workers=len(numbers), thread_name_prefix="probe") as asking:
            answers = list(asking.map(self._worker_readiness, numbers))
        problems = [problem for _, verdict in answers for problem in verdict.problems]
        workers = {name: verdict.to_json() for name, verdict in answers}
        return Verdict("ready", not problems, tuple(problems), {"workers": workers})

    def _worker_readiness(self, number: int) -> tuple[str, Verdict]:
        name = f"worker-{number}"
        worker = self._pool.worker(number)
        if worker is None:
            return name, Verdict("ready", False, (f"{name} is not running (being restarted)",))
        if not worker.ready:
            return name, Verdict(
                "ready", False, (f"{name} (pid {worker.pid}) has not joined its consumer groups yet",)
            )
        try:
            _, body, _ = fetch(self._socket_of(number), "/readyz", timeout=self._timeout)
            verdict = Verdict.from_json("ready", json.loads(body))
        except (OSError, ValueError) as error:
            problem = f"{name} (pid {worker.pid}) did not answer its readiness probe: {error}"
            return name, Verdict("ready", False, (problem,))
        return name, Verdict(
            "ready", verdict.ok, tuple(f"{name}: {p}" for p in verdict.problems), verdict.details
        )

    def metrics(self, accept: str | None) -> tuple[int, bytes, str]:
        if self._missing is not None:
            return 501, self._missing.encode() + b"\n", "text/plain; charset=utf-8"
        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import choose_encoder

        numbers = [n for n in range(1, self._pool.processes + 1) if self._pool.worker(n) is not None]
        with ThreadPoolExecutor(max_workers=max(1, len(numbers)), thread_name_prefix="scrape") as asking:
            scraped = list(asking.map(self._scrape, numbers))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(scraped, self._pool))
        encoder, content_type = choose_encoder(accept or "")
        return 200, encoder(registry), content_type

    def _scrape(self, number: int) -> tuple[str, str]:
        try:
            status, body, _ = fetch(
                self._socket_of(number), "/metrics", timeout=self._timeout, accept=TEXT_FORMAT
            )
        except OSError:
            return f"worker-{number}", ""  # restarting: its series come back with it
        return f"worker-{number}", body.decode() if status == 200 else ""


class _Merged:
    """The workers' families, each sample with its ``worker`` label, one family per name."""

    def __init__(self, scraped: list[tuple[str, str]], pool: WorkerPool) -> None:
        self._scraped = scraped
        self._pool = pool

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily
        from prometheus_client.metrics_core import Metric
        from prometheus_client.parser import text_string_to_metric_families

        merged: dict[str, Metric] = {}
        for worker, text in self._scraped:
            for family in text_string_to_metric_families(text):
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels: dict[str, Any] = {**sample.labels, "worker": worker}
                    into.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
        yield from merged.values()
        running = GaugeMetricFamily(f"{PREFIX}_workers_ready", "Workers whose app has started")
        numbers = range(1, self._pool.processes + 1)
        running.add_metric([], float(sum(1 for n in numbers if (w := self._pool.worker(n)) and w.ready)))
        yield running
        wanted = GaugeMetricFamily(f"{PREFIX}_workers", "Workers the pool keeps (--processes)")
        wanted.add_metric([], float(self._pool.processes))
        yield wanted
