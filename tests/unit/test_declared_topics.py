"""Declared topics: validated with the routes, and shown (with multi-cluster warnings) by ``info``."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from aiostream_kafka import App, ConfigError, DeadLetterQueue, Messages, TopicConfig, UnknownClusterError
from aiostream_kafka.cli import describe, render_info


async def handle(messages: Messages[Any]) -> None: ...


def make_app() -> App:
    return App(
        "svc",
        kafka={"bootstrap_servers": "127.0.0.1:19092"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:29092"}},
        log_events=False,
        opentelemetry=False,
    )


@pytest.mark.parametrize("options", [{"partitions": 0}, {"replication_factor": True}, {"settings": {1: "x"}}])
def test_a_topic_config_that_cannot_be_is_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"TopicConfig\("):
        TopicConfig(**options)


def test_settings_are_compared_as_the_broker_reports_them() -> None:
    config = TopicConfig(settings={"retention.ms": 1000, "compression.type": "zstd", "preallocate": True})

    assert config.wanted_settings() == {
        "retention.ms": "1000",
        "compression.type": "zstd",
        "preallocate": "true",
    }


def test_route_configs_and_declarations_land_on_their_clusters() -> None:
    app = make_app()
    app.routes.topic("clicks", handler=handle, cluster="analytics", config=TopicConfig(partitions=6))
    app.topics.declare("audit")
    app.topics.declare("audit", cluster="analytics", partitions=3)

    declared = sorted((d.cluster, d.name, d.config.partitions) for d in app.topology.declared)

    assert declared == [("analytics", "audit", 3), ("analytics", "clicks", 6), ("primary", "audit", 1)]


def test_the_same_topic_declared_twice_differently_on_one_cluster_is_an_error() -> None:
    app = make_app()
    app.routes.topic("clicks", handler=handle, config=TopicConfig(partitions=6))
    app.topics.declare("clicks", partitions=3)

    with pytest.raises(
        ConfigError, match=r"topic 'clicks' on cluster 'primary' is declared twice.*route for topic"
    ):
        _ = app.topology


# --- dead-letter queues declared with their route ---------------------------------------------


def test_a_dlq_with_a_config_is_declared_on_the_dlqs_own_cluster() -> None:
    app = make_app()
    dlq = DeadLetterQueue(
        "orders.dlq", cluster="analytics", config=TopicConfig(3, settings={"retention.ms": 1})
    )
    app.routes.topic("orders", handler=handle, dead_letter_queue=dlq)

    [declared] = app.topology.declared

    assert (declared.cluster, declared.name, declared.config) == ("analytics", "orders.dlq", dlq.config)
    assert declared.source == "the dead-letter queue of route for topic 'orders'"


def test_a_dlq_on_the_source_topics_cluster_by_default_is_declared_there() -> None:
    app = make_app()
    dlq = DeadLetterQueue("clicks.dlq", config=TopicConfig(2))
    app.routes.topic("clicks", handler=handle, cluster="analytics", dead_letter_queue=dlq)

    assert [(d.cluster, d.name) for d in app.topology.declared] == [("analytics", "clicks.dlq")]


def test_a_dlq_without_a_config_declares_nothing() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle, dead_letter_queue=DeadLetterQueue("orders.dlq"))

    assert app.topology.declared == ()


def test_routes_sharing_a_dlq_alike_and_a_matching_hand_written_declaration_are_one() -> None:
    app = make_app()
    dlq = DeadLetterQueue("all.dlq", config=TopicConfig(3))
    app.routes.topic("orders", handler=handle, dead_letter_queue=dlq)
    app.routes.topic("payments", handler=handle, dead_letter_queue=dlq)
    app.topics.declare("all.dlq", partitions=3)

    assert [(d.cluster, d.name) for d in app.topology.declared] == [("primary", "all.dlq")]


def test_a_hand_written_declaration_that_conflicts_with_the_dlqs_is_refused_naming_both() -> None:
    app = make_app()
    dlq = DeadLetterQueue("orders.dlq", cluster="analytics", config=TopicConfig(3))
    app.routes.topic("orders", handler=handle, dead_letter_queue=dlq)
    app.topics.declare("orders.dlq", cluster="analytics", partitions=1)

    with pytest.raises(
        ConfigError,
        match=r"topic 'orders.dlq' on cluster 'analytics' is declared twice with different settings "
        r"\(the dead-letter queue of route for topic 'orders' and app.topics.declare\('orders.dlq'\)\)",
    ):
        _ = app.topology


def test_a_dlq_config_needs_a_dlq_topic_and_a_topic_config() -> None:
    with pytest.raises(ConfigError, match=r"topic=None dispatches nothing, so there is no topic to declare"):
        DeadLetterQueue(None, config=TopicConfig())
    with pytest.raises(ConfigError, match=r"DeadLetterQueue\('orders.dlq', config=3\): a TopicConfig"):
        DeadLetterQueue("orders.dlq", config=3)  # type: ignore[arg-type]


def test_a_declaration_on_an_unknown_cluster_is_refused_naming_the_known_ones() -> None:
    app = make_app()

    with pytest.raises(
        UnknownClusterError, match=r"app.topics.declare\('audit'\): no cluster named 'billing'"
    ):
        app.topics.declare("audit", cluster="billing")


def test_info_lists_declared_topics_and_warns_about_a_topic_on_several_clusters() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("orders", handler=handle, cluster="analytics", config=TopicConfig(partitions=2))

    facts = describe(app.topology)
    text = render_info(app.name, facts)

    assert facts["on_several_clusters"] == {"orders": ["analytics", "primary"]}
    assert "topic 'orders' is used on 2 clusters (analytics, primary)" in text
    assert "Declared topics" in text
    assert json.loads(json.dumps(facts, default=repr))["declared_topics"][0]["partitions"] == 2


def test_info_lists_jobs_with_the_cluster_they_are_enqueued_to() -> None:
    app = make_app()

    @app.job(topic="jobs.default", name="send_email")
    async def send_email(to: str) -> None: ...

    @app.job(topic="jobs.analytics", cluster="analytics", name="crunch")
    async def crunch(n: int) -> None: ...

    facts = describe(app.topology, app.jobs)

    assert facts["jobs"] == [
        {"name": "send_email", "topic": "jobs.default", "cluster": "primary"},
        {"name": "crunch", "topic": "jobs.analytics", "cluster": "analytics"},
    ]
    assert re.search(r"^\s+crunch\s+jobs\.analytics\s+analytics$", render_info(app.name, facts), re.M)
    assert "Recurring jobs" not in render_info(app.name, facts)


def test_info_shows_a_recurring_jobs_schedule_and_next_tick() -> None:
    app = make_app()

    @app.job(topic="jobs.default", name="nightly", schedule="30 2 * * *")
    async def nightly() -> None: ...

    [facts] = describe(app.topology, app.jobs)["jobs"]

    assert (facts["name"], facts["schedule"]) == ("nightly", "30 2 * * *")
    tick = datetime.fromisoformat(facts["next_tick"])
    assert (tick.hour, tick.minute, tick.utcoffset()) == (2, 30, timedelta(0))
    assert 0 < tick.timestamp() - time.time() <= 86400
    shown = render_info(app.name, describe(app.topology, app.jobs))
    assert re.search(r"^\s+nightly\s+30 2 \* \* \*\s+" + re.escape(facts["next_tick"]) + "$", shown, re.M)


def test_a_job_on_an_unknown_cluster_is_refused_where_declared() -> None:
    app = make_app()

    with pytest.raises(UnknownClusterError, match=r"job '.*bill': no cluster named 'billing'"):

        @app.job(cluster="billing")
        async def bill() -> None: ...


def test_a_job_parameter_may_not_shadow_enqueue_options() -> None:
    app = make_app()

    async def remind(at: str) -> None: ...

    with pytest.raises(ConfigError, match="a parameter may not be called 'at'"):
        app.job()(remind)
