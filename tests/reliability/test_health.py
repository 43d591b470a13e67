"""Health probes and /metrics on real Kafka: readiness follows an outage of one cluster, naming
it and the routes it holds up, while liveness stays up and the other cluster's routes keep
consuming; a scrape shows each cluster's series, what was consumed and what was sent;
``--processes`` answers for its workers, through an outage too."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from aiostream_kafka import App, Messages, ProducerRecord
from aiostream_kafka.probes.client import fetch
from aiostream_kafka.probes.server import AppProbes, ProbeServer
from tests.helpers import Events, create_topic, eventually, eventually_true, free_port, produce
from tests.kafka_clusters import KafkaClusters
from tests.reliability.scenario import ROOT, end_pool, start_pool, worker_pids


async def probe(address: tuple[str, int], path: str) -> tuple[int, dict[str, Any]]:
    status, body, _ = await anyio.to_thread.run_sync(lambda: fetch(address, path, timeout=10))
    document: dict[str, Any] = json.loads(body)
    return status, document


async def scrape(address: tuple[str, int]) -> list[Sample]:
    status, body, _ = await anyio.to_thread.run_sync(lambda: fetch(address, "/metrics", timeout=10))
    assert status == 200, body
    return [sample for family in text_string_to_metric_families(body.decode()) for sample in family.samples]


def two_cluster_app(kafka: KafkaClusters, name: str, **settings: Any) -> App:
    return App(
        name,
        kafka={"bootstrap_servers": kafka.primary},
        clusters={"secondary": {"bootstrap_servers": kafka.secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        **settings,
    )


async def test_readiness_names_the_unreachable_cluster_and_its_routes_while_the_other_consumes(
    kafka: KafkaClusters, topic_name: str
) -> None:
    app = two_cluster_app(kafka, "health-outage")
    events = Events(app)
    seen: list[bytes] = []

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages if m.value is not None)

    @app.route(f"{topic_name}-orders", cluster="secondary")
    async def on_orders(messages: Messages[bytes]) -> None:
        pass

    await create_topic(kafka.primary, topic_name)
    await create_topic(kafka.secondary, f"{topic_name}-orders")
    server = ProbeServer(AppProbes(app.health), ("127.0.0.1", free_port()))
    address = server.address
    assert not isinstance(address, str)
    with server:
        status, before = await probe(address, "/readyz")
        assert (status, before["problems"]) == (503, ["the app has not started yet"])
        try:
            async with app.running():
                await eventually_true(
                    lambda: _is(probe(address, "/readyz"), 200), what="ready once both listeners joined"
                )
                kafka.stop("secondary")
                await eventually(
                    lambda: events.count("cluster.unreachable", cluster="secondary") == 1,
                    within=60,
                    what="the outage noticed",
                )
                status, during = await probe(address, "/readyz")
                live_status, live = await probe(address, "/livez")
                # The primary's routes keep consuming while the app is not ready.
                await produce(kafka.primary, topic_name, b"during the outage")
                await eventually(
                    lambda: b"during the outage" in seen, within=60, what="the primary consuming"
                )
                kafka.start("secondary")
                await eventually_true(
                    lambda: _is(probe(address, "/readyz"), 200), within=120, what="ready again"
                )
                _, after = await probe(address, "/readyz")
        finally:
            kafka.start("secondary")

    assert status == 503
    [problem] = during["problems"]
    assert problem.startswith("cluster 'secondary' is unreachable")
    assert f"{topic_name}-orders (tests.reliability.test_health:" in problem  # the route it holds up
    assert "on_orders" in problem
    assert during["clusters"]["secondary"]["reachable"] is False
    assert during["clusters"]["primary"]["reachable"] is True
    assert (live_status, live["live"], live["problems"]) == (200, True, [])  # Kafka down is no restart
    assert after["problems"] == []
    assert all(listener["state"] == "joined" for listener in after["listeners"])


async def test_a_cluster_down_when_the_app_starts_is_named_while_the_other_consumes(
    kafka: KafkaClusters, topic_name: str
) -> None:
    app = App(
        "health-down-at-start",
        kafka={"bootstrap_servers": kafka.primary},
        clusters={"secondary": {"bootstrap_servers": f"127.0.0.1:{free_port()}"}},  # nothing there
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )
    seen: list[bytes] = []

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages if m.value is not None)

    @app.route(topic_name, cluster="secondary")
    async def on_nowhere(messages: Messages[bytes]) -> None:
        pass

    await create_topic(kafka.primary, topic_name)
    async with app.running():
        await produce(kafka.primary, topic_name, b"while the secondary is away")
        await eventually(lambda: bool(seen), within=60, what="the primary consuming")
        await eventually(
            lambda: any("cluster 'secondary' is unreachable" in p for p in app.health.readiness().problems),
            within=60,
            what="readiness to name the secondary",
        )
        ready, live = app.health.readiness(), app.health.liveness()

    [problem] = ready.problems
    assert f"holding up: {topic_name} (tests.reliability.test_health:" in problem
    assert "on_nowhere); last error: cannot connect to cluster 'secondary'" in problem
    assert ready.details["producers"] == {"primary": True, "secondary": False}
    assert live.ok


async def _is(answer: Any, status: int) -> bool:
    got, _ = await answer
    return bool(got == status)


async def test_a_scrape_shows_each_clusters_series(kafka: KafkaClusters, topic_name: str) -> None:
    app = two_cluster_app(kafka, "health-metrics", statistics_interval=0.5)
    events = Events(app)
    handled = {"primary": 0, "secondary": 0}

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        handled["primary"] += len(messages)

    @app.route(topic_name, cluster="secondary")
    async def on_secondary(messages: Messages[bytes]) -> None:
        handled["secondary"] += len(messages)

    await create_topic(kafka.primary, topic_name, partitions=2)
    await create_topic(kafka.secondary, topic_name, partitions=1)
    server = ProbeServer(AppProbes(app.health), ("127.0.0.1", free_port()))
    address = server.address
    assert not isinstance(address, str)
    with server:
        async with app.running():
            for partition in (0, 1):
                await produce(kafka.primary, topic_name, b"p", b"p", b"p", partition=partition)
            await produce(kafka.secondary, topic_name, b"s", b"s", partition=0)
            await eventually(lambda: handled == {"primary": 6, "secondary": 2}, what="every message handled")
            # Lag comes with the statistics: wait for one from each listener after the last batch.
            mark = len(events.all)
            await eventually(
                lambda: (
                    {e["cluster"] for e in events.all[mark:] if e.name == "statistics.emitted"}
                    == {"primary", "secondary"}
                ),
                what="statistics from both listeners",
            )
            samples = await scrape(address)

    def values(name: str, **labels: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(s.labels[k] for k in sorted(s.labels)): s.value
            for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        }

    consumed = "aiostream_kafka_consumed_messages_total"
    assert sum(values(consumed, cluster="primary", topic=topic_name).values()) == 6
    assert sum(values(consumed, cluster="secondary", topic=topic_name).values()) == 2
    lag = {(s.labels["cluster"], s.labels["partition"]): s.value for s in samples if s.name.endswith("_lag")}
    assert lag == {("primary", "0"): 0, ("primary", "1"): 0, ("secondary", "0"): 0}  # a gauge per partition
    batches = values("aiostream_kafka_process_duration_seconds_count", cluster="secondary")
    assert sum(batches.values()) >= 1
    reachable = {
        s.labels["cluster"]: s.value for s in samples if s.name == "aiostream_kafka_cluster_reachable"
    }
    assert reachable == {"primary": 1, "secondary": 1}
    # Every series of the app's own carries its cluster.
    for sample in samples:
        if sample.name.startswith(
            ("aiostream_kafka_consumed", "aiostream_kafka_process", "aiostream_kafka_consumer")
        ):
            assert sample.labels["cluster"] in ("primary", "secondary"), sample


async def test_a_scrape_counts_what_each_clusters_producers_sent_and_what_the_brokers_refused(
    kafka: KafkaClusters, topic_name: str
) -> None:
    app = two_cluster_app(kafka, "health-sent")
    small = f"{topic_name}-small"
    await create_topic(kafka.primary, topic_name, partitions=2)
    await create_topic(kafka.secondary, topic_name)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.primary)
    await admin.start()
    try:  # a topic whose brokers refuse a message of over 1,000 bytes
        await admin.create_topics([NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "1000"})])
    finally:
        await admin.close()
    sent = Events(app)
    server = ProbeServer(AppProbes(app.health), ("127.0.0.1", free_port()))
    address = server.address
    assert not isinstance(address, str)
    with server:
        async with app.running():
            await (await app.producer.produce_nowait(topic_name, b"1"))
            await app.producer.produce(topic_name, b"2", key=b"k")
            await app.producer.produce_many(ProducerRecord(topic_name, b"m", partition=p) for p in (0, 1, 1))
            await app.producers["secondary"].produce(topic_name, b"3")
            refused = await app.producer.produce_nowait(small, b"x" * 5000)
            with pytest.raises(MessageSizeTooLargeError):
                await refused
            await eventually(
                lambda: sum(e["count"] for e in sent.named("records.sent")) == 7,
                what="every batch answered",
            )
            samples = await scrape(address)

    def counted(name: str) -> dict[tuple[str, str], float]:
        return {(s.labels["cluster"], s.labels["topic"]): s.value for s in samples if s.name == name}

    assert counted("aiostream_kafka_sent_messages_total") == {
        ("primary", topic_name): 5,
        ("secondary", topic_name): 1,
    }
    assert counted("aiostream_kafka_send_failed_messages_total") == {("primary", small): 1}


@pytest.mark.slow
async def test_the_parent_of_processes_answers_for_its_workers_through_an_outage(
    kafka: KafkaClusters, topic_name: str, tmp_path: Path
) -> None:
    await create_topic(kafka.primary, topic_name, partitions=4)
    await create_topic(kafka.secondary, topic_name, partitions=2)
    port = free_port()
    log = tmp_path / "pool.log"
    env = {
        "PROBED_PRIMARY": kafka.primary,
        "PROBED_SECONDARY": kafka.secondary,
        "PROBED_TOPIC": topic_name,
        "PROBED_GROUP": f"g-{uuid.uuid4().hex[:8]}",
    }
    parent = start_pool("tests.reliability.probed_app:app", 2, env, log, "--health", f"127.0.0.1:{port}")
    address = ("127.0.0.1", port)
    try:
        await eventually(lambda: len(worker_pids(log)) == 2, within=90, what="two workers ready")
        await eventually_true(lambda: _exec_probe("ready", port), within=90, what="the exec probe to pass")
        _, ready = await probe(address, "/readyz")
        for partition in range(4):
            await produce(kafka.primary, topic_name, *[b"p"] * 5, partition=partition)
        for partition in range(2):
            await produce(kafka.secondary, topic_name, *[b"s"] * 3, partition=partition)

        async def consumed() -> dict[tuple[str, str], float]:
            counts: dict[tuple[str, str], float] = {}
            for s in await scrape(address):
                if s.name == "aiostream_kafka_consumed_messages_total":
                    key = (s.labels["cluster"], s.labels["worker"])
                    counts[key] = counts.get(key, 0) + s.value
            return counts

        async def all_counted() -> bool:
            counts = await consumed()
            by_cluster = {
                c: sum(v for (cc, _), v in counts.items() if cc == c) for c in ("primary", "secondary")
            }
            return by_cluster == {"primary": 20, "secondary": 6}

        await eventually_true(all_counted, within=90, what="every message counted across the workers")
        counts = await consumed()
        live = await _exec_probe("live", port)

        # An outage of the secondary: the parent is not ready, naming it in each worker's
        # words, yet live; the workers' primary routes keep consuming.
        try:
            kafka.stop("secondary")
            await eventually_true(
                lambda: _is(probe(address, "/readyz"), 503), within=90, what="the outage seen"
            )

            async def every_worker_names_the_secondary() -> bool:
                _, answer = await probe(address, "/readyz")
                return {p.split(":")[0] for p in answer["problems"] if "'secondary' is unreachable" in p} == {
                    "worker-1",
                    "worker-2",
                }

            await eventually_true(every_worker_names_the_secondary, within=90, what="both workers naming it")
            _, during = await probe(address, "/readyz")
            live_during = await _exec_probe("live", port)
            ready_during = await _exec_probe("ready", port)
            await produce(kafka.primary, topic_name, b"p", partition=0)
            await eventually_true(
                lambda: _counted(consumed, "primary", 21), within=90, what="the primary consuming"
            )
        finally:
            kafka.start("secondary")
        await eventually_true(lambda: _is(probe(address, "/readyz"), 200), within=120, what="ready again")
    finally:
        status = end_pool(parent, log)

    assert set(ready["workers"]) == {"worker-1", "worker-2"}
    assert all(worker["ready"] for worker in ready["workers"].values())
    assert {worker for _, worker in counts} <= {"worker-1", "worker-2"}
    assert live
    assert all(not worker["ready"] for worker in during["workers"].values())
    assert (live_during, ready_during) == (True, False)  # Kafka down is no restart
    assert status == 0, log.read_text()[-3000:]


async def _counted(consumed: Any, cluster: str, expected: int) -> bool:
    counts: dict[tuple[str, str], float] = await consumed()
    return sum(v for (c, _), v in counts.items() if c == cluster) == expected


async def _exec_probe(probe_name: str, port: int) -> bool:
    """``aiostream-kafka health PROBE 127.0.0.1:PORT``, as an exec probe runs it: exit 0 or 1."""
    command = [sys.executable, "-m", "aiostream_kafka", "health", probe_name, f"127.0.0.1:{port}"]
    result = await anyio.run_process(command, cwd=ROOT, check=False, stderr=subprocess.STDOUT)
    assert result.returncode in (0, 1), result.stdout
    return result.returncode == 0
