"""OpenTelemetry on real Kafka: one trace across both clusters, metrics labelled by cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from aiostream_kafka import App, Messages, MonitorEvent, OpenTelemetryListener, ProducerRecord
from tests.helpers import create_topic, eventually, read_every_partition


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def metric_reader() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        value = point.value if isinstance(point, NumberDataPoint) else point.count
                        found.append((dict(point.attributes or {}), value))
    return found


def relay_app(
    primary: str, secondary: str, topic: str, telemetry: OpenTelemetryListener
) -> tuple[App, list[bytes | None]]:
    app = App(
        "telemetry",
        kafka={"bootstrap_servers": primary},
        clusters={"analytics": {"bootstrap_servers": secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        opentelemetry=telemetry,
        statistics_interval=0.2,
    )
    arrived: list[bytes | None] = []

    @app.route(topic)
    async def relay(messages: Messages[bytes]) -> None:
        for message in messages:
            await app.producers["analytics"].produce(f"{topic}-relayed", message.value)

    @app.route(f"{topic}-relayed", cluster="analytics")
    async def arrive(messages: Messages[bytes]) -> None:
        arrived.extend(m.value for m in messages)

    return app, arrived


async def test_a_message_relayed_across_clusters_is_one_trace(
    primary: str,
    secondary: str,
    topic_name: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    app, arrived = relay_app(primary, secondary, topic_name, OpenTelemetryListener(tracer_provider=provider))

    async with app.running():
        await app.producer.produce(topic_name, b"hop")
        await eventually(lambda: arrived == [b"hop"], what="the relayed message")
        await eventually(lambda: len(exporter.get_finished_spans()) >= 4, what="four spans")

    by_name: dict[str, ReadableSpan] = {span.name: span for span in exporter.get_finished_spans()}
    publish = by_name[f"{topic_name} publish"]
    process = by_name[f"{topic_name} process"]
    relayed_publish = by_name[f"{topic_name}-relayed publish"]
    relayed_process = by_name[f"{topic_name}-relayed process"]
    chain = [publish, process, relayed_publish, relayed_process]
    attributes = [dict(span.attributes or {}) for span in chain]

    assert len({span.context.trace_id for span in chain}) == 1
    parents = [span.parent.span_id if span.parent else None for span in chain]
    assert parents == [
        None,
        publish.context.span_id,
        process.context.span_id,
        relayed_publish.context.span_id,
    ]
    assert [link.context.span_id for link in process.links] == [publish.context.span_id]

    assert [s.kind for s in chain] == [SpanKind.PRODUCER, SpanKind.CONSUMER] * 2
    assert [a["aiostream_kafka.cluster"] for a in attributes] == [
        "primary",
        "primary",
        "analytics",
        "analytics",
    ]
    ports = [int(primary.rpartition(":")[2]), int(secondary.rpartition(":")[2])]
    assert [a["server.port"] for a in attributes] == [ports[0], ports[0], ports[1], ports[1]]
    on_publish, on_process = attributes[:2]
    assert on_process["messaging.system"] == "kafka"
    assert on_process["messaging.destination.name"] == topic_name
    assert on_process["messaging.destination.partition.id"] == "0"
    assert on_process["messaging.consumer.group.name"] == app.group_id
    assert on_process["messaging.batch.message_count"] == 1
    assert on_publish["messaging.kafka.offset"] == 0


async def test_metrics_carry_the_cluster_of_each_producer_and_consumer(
    primary: str,
    secondary: str,
    topic_name: str,
    metric_reader: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    provider, reader = metric_reader
    app, arrived = relay_app(primary, secondary, topic_name, OpenTelemetryListener(meter_provider=provider))
    statistics: list[MonitorEvent] = []
    app.monitor.subscribe("statistics.emitted", statistics.append)

    async with app.running():
        await app.producer.produce(topic_name, b"counted")
        await eventually(lambda: arrived == [b"counted"], what="the relayed message")
        await eventually(
            lambda: any(e["cluster"] == "analytics" and e["lag"] for e in statistics), what="lag statistics"
        )

    consumed = {
        a["aiostream_kafka.cluster"]: v for a, v in points(reader, "messaging.client.consumed.messages")
    }
    sent = {a["aiostream_kafka.cluster"]: v for a, v in points(reader, "messaging.client.sent.messages")}
    assert consumed == {"primary": 1, "analytics": 1}
    assert sent == {"primary": 1, "analytics": 1}
    durations = points(reader, "messaging.process.duration")
    assert sorted(a["aiostream_kafka.cluster"] for a, _ in durations) == ["analytics", "primary"]
    lag = {
        (a["aiostream_kafka.cluster"], a["messaging.destination.name"]): v
        for a, v in points(reader, "aiostream_kafka.consumer.lag")
    }
    assert lag[("analytics", f"{topic_name}-relayed")] == 0


async def test_a_failing_monitor_subscriber_does_not_stop_consumption(
    primary: str, topic_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App("broken-observer", kafka={"bootstrap_servers": primary}, group_id=f"g-{uuid.uuid4().hex[:8]}")
    handled: list[bytes | None] = []

    def broken(event: MonitorEvent) -> None:
        raise RuntimeError("observer bug")

    async def broken_async(event: MonitorEvent) -> None:
        raise RuntimeError("async observer bug")

    app.monitor.subscribe("*", broken)
    app.monitor.subscribe("batch.processed", broken_async)

    @app.route(topic_name)
    async def handle(messages: Messages[bytes]) -> None:
        handled.extend(m.value for m in messages)

    async with app.running():
        for value in (b"1", b"2", b"3"):
            await app.producer.produce(topic_name, value)
        await eventually(lambda: handled == [b"1", b"2", b"3"], what="all three despite the observers")

    assert "observer bug" in caplog.text
    assert "async observer bug" in caplog.text


async def test_produce_many_under_tracing_builds_batches_one_span_each_and_each_message_carries_its_trace(
    primary: str,
    topic_name: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    metric_reader: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    (tracer, exporter), (meter, reader) = spans, metric_reader
    app = App(
        "traced-batches",
        kafka={"bootstrap_servers": primary, "max_batch_size": 1024},  # a few messages a batch
        opentelemetry=OpenTelemetryListener(tracer_provider=tracer, meter_provider=meter),
    )
    batches: list[MonitorEvent] = []
    app.monitor.subscribe("batch.produced", batches.append)
    records = [ProducerRecord(topic_name, b"m%d" % n, key=b"k%d" % (n % 3)) for n in range(60)]
    records[5] = ProducerRecord(topic_name, b"m5", key=b"k2", headers={"own": "kept"})

    await create_topic(primary, topic_name, 3)

    async with app.running():
        results = await app.producer.produce_many(records)

    assert len(batches) > 1  # built in batches, tracing or not
    publishes = [s for s in exporter.get_finished_spans() if s.name == f"{topic_name} publish"]
    assert len(publishes) == len(batches)
    assert all(s.kind == SpanKind.PRODUCER for s in publishes)
    by_place: dict[tuple[int, int], ReadableSpan] = {}  # each (partition, offset)'s batch span
    for span in publishes:
        attributes = {k: str(v) for k, v in (span.attributes or {}).items()}
        first, count = (
            int(attributes["messaging.kafka.offset"]),
            int(attributes["messaging.batch.message_count"]),
        )
        partition = int(attributes["messaging.destination.partition.id"])
        by_place.update({(partition, offset): span for offset in range(first, first + count)})
    assert len(by_place) == 60
    consumed = await read_every_partition(primary, topic_name, 3)
    for record, result in zip(records, results, strict=True):
        message = consumed[result.partition, result.offset]
        headers = dict(message.headers)
        span = by_place[result.partition, result.offset]
        assert f"{span.context.trace_id:032x}-{span.context.span_id:016x}" in headers["traceparent"].decode()
        if record.headers:
            assert headers["own"] == b"kept"  # its own headers, and the trace context
    assert {a["aiostream_kafka.cluster"]: v for a, v in points(reader, "messaging.client.sent.messages")} == {
        "primary": 60
    }


#: The app the docs' setup is tried with: one message produced and consumed on the primary.
TRACED_APP = """
import anyio, json, os, sys
from aiostream_kafka import App, Messages

app = App("traced", kafka={"bootstrap_servers": os.environ["PRIMARY"]}, group_id=os.environ["GROUP"])
done = anyio.Event()

@app.route(os.environ["TOPIC"])
async def handle(messages: Messages[bytes]) -> None:
    done.set()

async def main() -> None:
    async with app.running():
        await app.producer.produce(os.environ["TOPIC"], b"traced")
        await done.wait()

anyio.run(main)
tracer_provider.force_flush()
print("spans:", json.dumps([[span.name, span.kind.name] for span in span_exporter.get_finished_spans()]))
"""


def docs_setup() -> str:
    """The OpenTelemetry setup docs/observability.md gives, with spans kept in memory to look at."""
    docs = (Path(__file__).parents[2] / "docs" / "observability.md").read_text()
    section = docs[docs.index("## Traces and metrics") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("\n```\n")]
    console = "span_exporter = ConsoleSpanExporter()"
    assert console in code
    in_memory = "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
    return in_memory + code.replace(console, "span_exporter = InMemorySpanExporter()")


def test_the_documented_sdk_setup_records_the_frameworks_spans(primary: str, topic_name: str) -> None:
    script = docs_setup() + TRACED_APP
    env = {**os.environ, "PRIMARY": primary, "TOPIC": topic_name, "GROUP": f"g-{uuid.uuid4().hex[:8]}"}

    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("spans: ")]
    spans = json.loads(line.removeprefix("spans: "))
    assert [topic_name + " publish", "PRODUCER"] in spans
    assert [topic_name + " process", "CONSUMER"] in spans
