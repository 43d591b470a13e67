"""The app's metrics in Prometheus' exposition format (``/metrics``), every series labelled by cluster.

Through prometheus-client (the ``prometheus`` extra) rather than OpenTelemetry's Prometheus
exporter: the exporter needs the OpenTelemetry SDK in the process, and with an SDK the
OpenTelemetry listener takes per-message events (a delivery callback per ``produce_nowait``
and ``produce``: docs/events.md), which a scrape must not cost. These series are counted
from the events the runtime emits per batch anyway (``batch.processed``,
``statistics.emitted``, ...), per app (two apps in one process do not mix), so nothing is
added per message: messages sent are counted from ``records.sent``, one event per batch
aiokafka sent (producing/deliveries.py), whichever call queued its records.

The events update the tallies on the loop, under a lock; the probe server's thread reads
them at each scrape.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import TYPE_CHECKING, Any, TypeVar

from aiostream_kafka.errors import ConfigError, ProduceError
from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from aiostream_kafka.probes.health import Health

EXTRA = "pip install 'aiostream-kafka[prometheus]'"
PREFIX = "aiostream_kafka"


def missing() -> str | None:
    """Why ``/metrics`` cannot be served here, or None."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return f"/metrics needs prometheus-client: {EXTRA}"
    return None


#: The handler-time histogram's upper bounds (seconds): prometheus-client's defaults.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_Consumer = tuple[str, str, str]  # cluster, group, topic
_Sent = tuple[str, str]  # cluster, topic
_Key = TypeVar("_Key", bound=tuple[str, ...])  # a tally's label values


class _Durations:
    __slots__ = ("buckets", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; the last: +Inf
        self.sum = 0.0


class AppMetrics:
    """One app's series; ``app.health.metrics`` makes it (and subscribes it) on first use.

    Tallies of our own, under one lock, rather than prometheus-client's metric objects,
    whose label lookups and locks cost about five times as much a batch (measured side by
    side: a counter and a histogram updated per ``batch.processed``); prometheus-client
    renders the tallies at scrape time."""

    def __init__(self, monitor: Monitor, health: Health) -> None:
        problem = missing()
        if problem is not None:
            raise ConfigError(problem)
        from prometheus_client import CollectorRegistry

        self._lock = threading.Lock()
        self._consumed: dict[_Consumer, int] = {}
        self._durations: dict[_Consumer, _Durations] = {}
        self._dead_lettered: dict[_Consumer, int] = {}
        self._sent: dict[_Sent, int] = {}
        self._send_failed: dict[_Sent, int] = {}
        self._skipped: dict[tuple[str, str, str, str], int] = {}  # (*consumer, reason): messages
        self._holds: dict[tuple[str, str, str, str], int] = {}  # (*consumer, reason): partition pauses
        self._errors: dict[tuple[str, str], int] = {}
        self._loop_blocks: dict[str, int] = {}
        self._lag: dict[tuple[str, str], dict[str, int]] = {}  # (cluster, group) -> {"topic/n": lag}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        self.registry.register(_HealthCollector(health))
        subscriptions = {
            "batch.processed": self._on_batch_processed,
            "batch.failed": self._on_error,
            "produce.failed": self._on_error,  # failures only: no per-message cost while sends succeed
            "listener.crashed": self._on_error,
            "error.occurred": self._on_error,
            "dlq.dispatched": self._on_dlq_dispatched,
            "records.sent": self._on_records_sent,
            "loop.blocked": self._on_loop_blocked,
            "messages.expired": self._on_skipped,
            "messages.filtered": self._on_skipped,
            "partition.throttled": self._on_held,
            "partition.delayed": self._on_held,
            "partition.paused": self._on_held,
            "statistics.emitted": self._on_statistics_emitted,
        }
        for name, subscriber in subscriptions.items():
            monitor.subscribe(name, subscriber)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The body and its content type, in the format the scraper's ``Accept`` asks for."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    # --- counting (the loop) --------------------------------------------------------------

    def _on_batch_processed(self, event: MonitorEvent) -> None:
        key = (event["cluster"], event["group"], event["topic"])
        duration = event["duration"]
        with self._lock:
            self._consumed[key] = self._consumed.get(key, 0) + event["count"]
            durations = self._durations.get(key)
            if durations is None:
                durations = self._durations[key] = _Durations()
            durations.buckets[bisect_left(BUCKETS, duration)] += 1
            durations.sum += duration

    def _on_dlq_dispatched(self, event: MonitorEvent) -> None:
        key = (event["cluster"], event["group"], event["topic"])
        with self._lock:
            self._dead_lettered[key] = self._dead_lettered.get(key, 0) + 1

    def _on_records_sent(self, event: MonitorEvent) -> None:
        key = (event["cluster"], event["topic"])
        tally = self._sent if event["error"] is None else self._send_failed
        with self._lock:
            tally[key] = tally.get(key, 0) + event["count"]

    def _on_skipped(self, event: MonitorEvent) -> None:
        key = (event["cluster"], event["group"], event["topic"], event.name.partition(".")[2])
        with self._lock:
            self._skipped[key] = self._skipped.get(key, 0) + event["count"]

    def _on_held(self, event: MonitorEvent) -> None:
        key = (event["cluster"], event["group"], event["topic"], event.name.partition(".")[2])
        with self._lock:
            self._holds[key] = self._holds.get(key, 0) + 1

    def _on_error(self, event: MonitorEvent) -> None:
        key = (event["cluster"], _error_type(event))
        with self._lock:
            self._errors[key] = self._errors.get(key, 0) + (event.get("count") or 1)

    def _on_loop_blocked(self, event: MonitorEvent) -> None:
        with self._lock:
            self._loop_blocks[event["cluster"]] = self._loop_blocks.get(event["cluster"], 0) + (
                event.get("blocks") or 1
            )

    def _on_statistics_emitted(self, event: MonitorEvent) -> None:
        lag = dict(event["lag"])  # the listener's partitions now: one that moved away drops out
        with self._lock:
            self._lag[(event["cluster"], event["group"])] = lag

    # --- rendering (the scrape's thread) ---------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        with self._lock:
            consumed, dead_lettered = dict(self._consumed), dict(self._dead_lettered)
            sent, send_failed = dict(self._sent), dict(self._send_failed)
            durations = {k: (list(d.buckets), d.sum) for k, d in self._durations.items()}
            errors, loop_blocks, lag = dict(self._errors), dict(self._loop_blocks), dict(self._lag)
            skipped, holds = dict(self._skipped), dict(self._holds)
        consumer = ["cluster", "group", "topic"]
        yield _counter("consumed_messages", "Messages handed to handlers that returned", consumer, consumed)
        histogram = HistogramMetricFamily(
            f"{PREFIX}_process_duration_seconds", "Time a handler took for one batch", labels=consumer
        )
        bounds = [*(str(bound) for bound in BUCKETS), "+Inf"]  # as Go writes them: 0.005, 1.0, 10.0
        for key, (buckets, total) in durations.items():
            histogram.add_metric(key, list(zip(bounds, accumulate(buckets), strict=True)), total)
        yield histogram
        yield _counter(
            "dlq_dispatched_messages",
            "Messages given up on (sent to the dead-letter queue, or skipped)",
            consumer,
            dead_lettered,
        )
        producer = ["cluster", "topic"]
        yield _counter("sent_messages", "Messages the cluster's brokers accepted", producer, sent)
        yield _counter(
            "send_failed_messages",
            "Messages the cluster's brokers did not take (the send's error says why)",
            producer,
            send_failed,
        )
        yield _counter(
            "skipped_messages",
            "Messages a route's flow options skipped before the handler (reason: expired, filtered)",
            [*consumer, "reason"],
            skipped,
        )
        yield _counter(
            "partition_holds",
            "Times a route's flow options paused a partition (reason: throttled, delayed, paused)",
            [*consumer, "reason"],
            holds,
        )
        yield _counter("errors", "Failures, by the error's type", ["cluster", "error_type"], errors)
        yield _counter(
            "loop_blocks",
            "Times the event loop was blocked past the threshold",
            ["cluster"],
            {(cluster,): value for cluster, value in loop_blocks.items()},
        )
        gauge = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag",
            "Messages behind the partition's end (from statistics.emitted)",
            labels=[*consumer, "partition"],
        )
        for (cluster, group), partitions in lag.items():
            for partition, value in partitions.items():
                topic, _, number = partition.rpartition("/")
                gauge.add_metric([cluster, group, topic, number], value)
        yield gauge


class _HealthCollector:
    """Readiness as series, read from ``Health`` at each scrape (nothing kept in between)."""

    def __init__(self, health: Health) -> None:
        self._health = health

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        verdict = self._health.readiness()
        ready = GaugeMetricFamily(f"{PREFIX}_ready", "1 while /readyz passes")
        ready.add_metric([], 1.0 if verdict.ok else 0.0)
        yield ready
        reachable = GaugeMetricFamily(
            f"{PREFIX}_cluster_reachable", "0 while the cluster is unreachable", labels=["cluster"]
        )
        clusters: dict[str, Any] = verdict.details.get("clusters", {})
        for name, cluster in clusters.items():
            reachable.add_metric([name], 1.0 if cluster["reachable"] else 0.0)
        yield reachable
        joined = GaugeMetricFamily(
            f"{PREFIX}_listener_joined",
            "1 once the subscription group's listener has joined its consumer group",
            labels=["cluster", "subscription_group", "group"],
        )
        for listener in verdict.details.get("listeners", []):
            labels = [listener["cluster"], listener["subscription_group"], listener["group"]]
            joined.add_metric(labels, 1.0 if listener["state"] == "joined" else 0.0)
        yield joined


def _counter(name: str, documentation: str, labels: list[str], tallies: Mapping[_Key, int]) -> Metric:
    """One counter family from a tally keyed by its label values: every counter renders alike."""
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)
    for key, value in tallies.items():
        family.add_metric(key, value)
    return family


def _error_type(event: MonitorEvent) -> str:
    error = event.get("error")
    if isinstance(error, ProduceError) and error.__cause__ is not None:
        error = error.__cause__  # aiokafka's error says which failure it was; ours says where
    return type(error).__qualname__ if error is not None else str(event.get("type", "unknown"))
