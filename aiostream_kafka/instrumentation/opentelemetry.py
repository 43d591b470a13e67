"""OpenTelemetry traces and metrics from Monitor events, through ``opentelemetry-api`` only.

Without an SDK (and without providers passed in) the API is a no-op, and this listener
skips the tracing work entirely, so instrumentation is nearly free until someone looks.

Traces follow the messaging semantic conventions: ``<topic> publish`` (PRODUCER) spans
inject W3C trace context into the message headers of every cluster's producer; each batch
handed to a handler is one ``<topic> process`` (CONSUMER) span, whose parent is the first
message's producer context (so a message relayed across clusters stays in one trace) and
which links to every message's producer context. A Kafka transaction (an exactly-once
batch's, inside its ``process`` span, or ``producer.transaction()``'s) is a ``<topic>
transaction`` / ``transaction`` span, ended when it commits or aborts (an error then).
Metrics carry the cluster name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from aiostream_kafka.__about__ import __version__
from aiostream_kafka.errors import ProduceError
from aiostream_kafka.instrumentation.monitor import EVENTS, Monitor, MonitorEvent, method_name

SCOPE = "aiostream_kafka"
CLUSTER = "aiostream_kafka.cluster"

_BatchKey = tuple[str, str, str, str, int]

#: Events of what is produced (once per message, or once per batch ``produce_many`` built):
#: subscribed only while an SDK would record them, so that producers skip building them.
PER_MESSAGE = frozenset(
    {"message.producing", "message.produced", "batch.producing", "batch.produced", "produce.failed"}
)


class OpenTelemetryListener:
    """Subscribe with ``install(app.monitor)``; the App installs one by default."""

    def __init__(
        self, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
    ) -> None:
        self._own_tracer = tracer_provider is not None
        self._own_meter = meter_provider is not None
        self._tracing = self._metering = False
        self._monitor: Monitor | None = None
        self._per_message: list[Callable[[], None]] = []  # unsubscribes, once subscribed
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self._consumed = meter.create_counter(
            "messaging.client.consumed.messages", unit="{message}", description="Messages handed to handlers"
        )
        self._sent = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Messages the brokers accepted"
        )
        self._duration = meter.create_histogram(
            "messaging.process.duration", unit="s", description="Time a handler took for one batch"
        )
        self._errors = meter.create_counter("aiostream_kafka.errors", unit="{error}", description="Failures")
        self._dead_lettered = meter.create_counter(
            "aiostream_kafka.dlq.dispatched", unit="{message}", description="Messages given up on"
        )
        meter.create_observable_gauge(
            "aiostream_kafka.consumer.lag",
            callbacks=[self._observe_lag],
            unit="{message}",
            description="Messages behind the partition's end, per partition (from statistics.emitted)",
        )
        self._lag: dict[tuple[str, str, str], int] = {}
        self._batches: dict[_BatchKey, tuple[Span, object]] = {}
        self._transactions: dict[str, Span] = {}  # by transactional id: one open at a time each

    def install(self, monitor: Monitor) -> None:
        self._monitor = monitor
        for event in sorted(EVENTS - PER_MESSAGE):
            method = getattr(self, method_name(event), None)
            if method is not None:
                monitor.subscribe(event, method)
        self._refresh()

    def _refresh(self) -> None:
        """Find out whether an SDK would record anything, and only then take per-message events:
        without one, producers then skip building them (and their delivery callbacks) entirely.

        Asked at install, at ``app.started`` and on every ``statistics.emitted``, so an SDK set
        up after the app started is picked up within one statistics interval. (The API answers
        with an environment lookup while no SDK is set: too slow to ask per message.)"""
        self._tracing = self._own_tracer or not isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider
        )
        # The API hands out its private _ProxyMeterProvider until an SDK provider is set.
        self._metering = (
            self._own_meter or type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"
        )
        if (self._tracing or self._metering) and not self._per_message and self._monitor is not None:
            self._per_message = [
                self._monitor.subscribe(event, getattr(self, method_name(event)))
                for event in sorted(PER_MESSAGE)
            ]

    def on_app_started(self, event: MonitorEvent) -> None:
        self._refresh()

    # --- consuming -----------------------------------------------------------------------

    def on_batch_received(self, event: MonitorEvent) -> None:
        if not self._tracing:
            return
        key = _batch_key(event)
        self._end_stale(key)
        messages = event["messages"]
        contexts = [propagate.extract(_carrier(m.raw_headers)) for m in messages]
        span = self._tracer.start_span(
            f"{event['topic']} process",
            context=contexts[0] if contexts else None,
            kind=SpanKind.CONSUMER,
            attributes={
                **_server(event["server"]),
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": event["topic"],
                "messaging.destination.partition.id": str(event["partition"]),
                "messaging.consumer.group.name": event["group"],
                "messaging.batch.message_count": event["count"],
                "messaging.kafka.offset": event["first_offset"],
                CLUSTER: event["cluster"],
            },
        )
        if span.is_recording():
            for producer in contexts:
                span_context = trace.get_current_span(producer).get_span_context()
                if span_context.is_valid:
                    span.add_link(span_context)
        # The handler runs in this task right after this event: make the span current there,
        # so that what it produces is part of the same trace.
        token = otel_context.attach(trace.set_span_in_context(span))
        self._batches[key] = (span, token)

    def on_batch_processed(self, event: MonitorEvent) -> None:
        attributes = _metric_attributes(event, consumer=True)
        self._consumed.add(event["count"], attributes)
        self._duration.record(event["duration"], attributes)
        self._finish(event, None)

    def on_batch_failed(self, event: MonitorEvent) -> None:
        self._errors.add(1, {**_metric_attributes(event, consumer=True), "error.type": _error_type(event)})
        self._finish(event, event.get("error"))

    def _finish(self, event: MonitorEvent, error: BaseException | None) -> None:
        entry = self._batches.pop(_batch_key(event), None)
        if entry is None:
            return
        span, token = entry
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.set_attribute("error.type", type(error).__qualname__)
        otel_context.detach(token)  # type: ignore[arg-type]
        span.end()

    def _end_stale(self, key: _BatchKey) -> None:
        """A batch abandoned by a revoke or a forced stop never reported its end: end it now."""
        entry = self._batches.pop(key, None)
        if entry is not None:
            entry[0].set_attribute("aiostream_kafka.abandoned", True)
            entry[0].end()

    def on_app_stopped(self, event: MonitorEvent) -> None:
        for key in list(self._batches):
            self._end_stale(key)
        for span in self._transactions.values():
            span.set_attribute("aiostream_kafka.abandoned", True)
            span.end()
        self._transactions.clear()

    # --- transactions --------------------------------------------------------------------

    def on_transaction_begun(self, event: MonitorEvent) -> None:
        if not self._tracing:
            return
        stale = self._transactions.pop(event["transactional_id"], None)
        if stale is not None:
            stale.end()
        topic = event.get("topic")
        attributes: dict[str, Any] = {
            CLUSTER: event["cluster"],
            "aiostream_kafka.transactional_id": event["transactional_id"],
        }
        if topic is not None:
            attributes |= {
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(event["partition"]),
            }
        name = f"{topic} transaction" if topic is not None else "transaction"
        self._transactions[event["transactional_id"]] = self._tracer.start_span(
            name, kind=SpanKind.INTERNAL, attributes=attributes
        )

    def on_transaction_committed(self, event: MonitorEvent) -> None:
        span = self._transactions.pop(event["transactional_id"], None)
        if span is not None:
            if event.get("offset") is not None:
                span.set_attribute("aiostream_kafka.committed_offset", event["offset"])
            span.end()

    def on_transaction_aborted(self, event: MonitorEvent) -> None:
        self._errors.add(1, {CLUSTER: event["cluster"], "error.type": "transaction.aborted"})
        span = self._transactions.pop(event["transactional_id"], None)
        if span is not None:
            error = event.get("error")
            if isinstance(error, BaseException):
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"aborted: {error}"))
            span.end()

    # --- producing -----------------------------------------------------------------------

    def on_message_producing(self, event: MonitorEvent) -> None:
        self._publishing(event, batch=False)

    def on_batch_producing(self, event: MonitorEvent) -> None:
        """One span for a batch ``produce_many`` built: each of its records carries its context."""
        self._publishing(event, batch=True)

    def _publishing(self, event: MonitorEvent, *, batch: bool) -> None:
        if not self._tracing:
            return
        attributes = {
            **_server(event["server"]),
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": event["topic"],
            CLUSTER: event["cluster"],
        }
        if batch:
            attributes["messaging.destination.partition.id"] = str(event["partition"])
        span = self._tracer.start_span(
            f"{event['topic']} publish", kind=SpanKind.PRODUCER, attributes=attributes
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        event["headers"].extend((name, value.encode()) for name, value in carrier.items())
        event["context"]["otel_span"] = span

    def on_message_produced(self, event: MonitorEvent) -> None:
        self._sent.add(1, _metric_attributes(event, consumer=False))
        span = _span_of(event)
        if span is not None:
            span.set_attribute("messaging.destination.partition.id", str(event["partition"]))
            span.set_attribute("messaging.kafka.offset", event["offset"])
            span.end()

    def on_batch_produced(self, event: MonitorEvent) -> None:
        self._sent.add(event["count"], _metric_attributes(event, consumer=False))
        span = _span_of(event)
        if span is not None:
            span.set_attribute("messaging.batch.message_count", event["count"])
            if event["base_offset"] is not None:
                span.set_attribute("messaging.kafka.offset", event["base_offset"])
            span.end()

    def on_produce_failed(self, event: MonitorEvent) -> None:
        self._errors.add(1, {**_metric_attributes(event, consumer=False), "error.type": _error_type(event)})
        span = _span_of(event)
        if span is not None:
            span.record_exception(event["error"])
            span.set_status(Status(StatusCode.ERROR, str(event["error"])))
            span.end()

    # --- everything else -----------------------------------------------------------------

    def on_dlq_dispatched(self, event: MonitorEvent) -> None:
        self._dead_lettered.add(1, _metric_attributes(event, consumer=True))

    def on_error_occurred(self, event: MonitorEvent) -> None:
        self._errors.add(1, {CLUSTER: event["cluster"], "error.type": _error_type(event)})

    def on_listener_crashed(self, event: MonitorEvent) -> None:
        self._errors.add(1, {CLUSTER: event["cluster"], "error.type": _error_type(event)})

    def on_statistics_emitted(self, event: MonitorEvent) -> None:
        self._refresh()
        cluster, group = event["cluster"], event["group"]
        for key in [k for k in self._lag if k[:2] == (cluster, group)]:
            del self._lag[key]  # partitions that moved elsewhere stop reporting
        for partition, lag in event["lag"].items():
            self._lag[(cluster, group, partition)] = lag

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        for (cluster, group, partition), lag in list(self._lag.items()):
            topic, _, number = partition.rpartition("/")
            yield Observation(
                lag,
                {
                    CLUSTER: cluster,
                    "messaging.consumer.group.name": group,
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": number,
                },
            )


def _batch_key(event: MonitorEvent) -> _BatchKey:
    return (event["cluster"], event["group"], event["subscription_group"], event["topic"], event["partition"])


def _carrier(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    return {name: value.decode("latin-1") for name, value in headers if value is not None}


def _server(address: str) -> Mapping[str, Any]:
    host, _, port = address.rpartition(":")
    return (
        {"server.address": host, "server.port": int(port)} if port.isdigit() else {"server.address": address}
    )


def _metric_attributes(event: MonitorEvent, *, consumer: bool) -> dict[str, Any]:
    attributes = {
        CLUSTER: event["cluster"],
        "messaging.system": "kafka",
        "messaging.destination.name": event["topic"],
    }
    if consumer:
        attributes["messaging.consumer.group.name"] = event["group"]
    return attributes


def _error_type(event: MonitorEvent) -> str:
    error = event.get("error")
    if isinstance(error, ProduceError) and error.__cause__ is not None:
        error = error.__cause__  # aiokafka's error says which failure it was; ours says where
    return type(error).__qualname__ if error is not None else str(event.get("type", "unknown"))


def _span_of(event: MonitorEvent) -> Span | None:
    context = event.get("context")
    return context.pop("otel_span", None) if context else None
