"""The app's metrics in Prometheus' exposition format (``/metrics``), every series labelled by cluster.

Through prometheus-client (the ``prometheus`` extra) rather than OpenTelemetry's Prometheus
exporter: the exporter needs the OpenTelemetry SDK in the process, and with an SDK the
OpenTelemetry listener takes per-message events (a delivery callback per ``produce_nowait``
and ``produce``: docs/events.md), which a scrape must not cost. These series are counted from the events the runtime emits per batch anyway
(``batch.processed``, ``statistics.emitted``, ...), into a registry of the app's own (two
apps in one process do not mix), so nothing is added per message. For the same reason
messages sent are not counted here: only a per-message event could count ``produce_nowait``'s.

prometheus-client's metrics are thread-safe: the events update them on the loop, the probe
server's thread renders them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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


class AppMetrics:
    """One app's series; ``app.health.metrics`` makes it (and subscribes it) on first use."""

    def __init__(self, monitor: Monitor, health: Health) -> None:
        problem = missing()
        if problem is not None:
            raise ConfigError(problem)
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        consumer = ["cluster", "group", "topic"]
        self._consumed = Counter(
            f"{PREFIX}_consumed_messages",
            "Messages handed to handlers that returned",
            consumer,
            registry=self.registry,
        )
        self._duration = Histogram(
            f"{PREFIX}_process_duration_seconds",
            "Time a handler took for one batch",
            consumer,
            registry=self.registry,
        )
        self._dead_lettered = Counter(
            f"{PREFIX}_dlq_dispatched_messages",
            "Messages given up on (sent to the dead-letter queue, or skipped)",
            consumer,
            registry=self.registry,
        )
        self._errors = Counter(
            f"{PREFIX}_errors",
            "Failures, by the error's type",
            ["cluster", "error_type"],
            registry=self.registry,
        )
        self._loop_blocks = Counter(
            f"{PREFIX}_loop_blocks", "Times the event loop was blocked past the threshold", ["cluster"],
            registry=self.registry,
        )  # fmt: skip
        self._lag = Gauge(
            f"{PREFIX}_consumer_lag",
            "Messages behind the partition's end (from statistics.emitted)",
            [*consumer, "partition"],
            registry=self.registry,
        )
        self._lagging: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (cluster, group) -> partitions
        self.registry.register(_HealthCollector(health))
        subscriptions = {
            "batch.processed": self._on_batch_processed,
            "batch.failed": self._on_error,
            "produce.failed": self._on_error,  # failures only: no per-message cost while sends succeed
            "listener.crashed": self._on_error,
            "error.occurred": self._on_error,
            "dlq.dispatched": self._on_dlq_dispatched,
            "loop.blocked": self._on_loop_blocked,
            "statistics.emitted": self._on_statistics_emitted,
        }
        for name, subscriber in subscriptions.items():
            monitor.subscribe(name, subscriber)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The body and its content type, in the format the scraper's ``Accept`` asks for."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def _on_batch_processed(self, event: MonitorEvent) -> None:
        labels = (event["cluster"], event["group"], event["topic"])
        self._consumed.labels(*labels).inc(event["count"])
        self._duration.labels(*labels).observe(event["duration"])

    def _on_dlq_dispatched(self, event: MonitorEvent) -> None:
        self._dead_lettered.labels(event["cluster"], event["group"], event["topic"]).inc()

    def _on_error(self, event: MonitorEvent) -> None:
        self._errors.labels(event["cluster"], _error_type(event)).inc(event.get("count") or 1)

    def _on_loop_blocked(self, event: MonitorEvent) -> None:
        self._loop_blocks.labels(event["cluster"]).inc(event.get("blocks") or 1)

    def _on_statistics_emitted(self, event: MonitorEvent) -> None:
        cluster, group = event["cluster"], event["group"]
        now: set[tuple[str, str]] = set()
        for partition, lag in event["lag"].items():
            topic, _, number = partition.rpartition("/")
            self._lag.labels(cluster, group, topic, number).set(lag)
            now.add((topic, number))
        for topic, number in self._lagging.get((cluster, group), set()) - now:
            self._lag.remove(cluster, group, topic, number)  # moved to another member
        self._lagging[(cluster, group)] = now


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


def _error_type(event: MonitorEvent) -> str:
    error = event.get("error")
    if isinstance(error, ProduceError) and error.__cause__ is not None:
        error = error.__cause__  # aiokafka's error says which failure it was; ours says where
    return type(error).__qualname__ if error is not None else str(event.get("type", "unknown"))
