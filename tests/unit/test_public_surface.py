"""What ``aiostream_kafka`` exports: what applications write, annotate and catch. Names that
left it, or were renamed, keep working with a DeprecationWarning that says what to use."""

from __future__ import annotations

import importlib

import pytest

import aiostream_kafka
from aiostream_kafka.config import Cluster
from aiostream_kafka.instrumentation.monitor import MonitorEvent
from aiostream_kafka.routing import Route, RoutedTopic, SubscriptionGroup, Topology
from aiostream_kafka.routing.declared import DeclaredTopic


def test_every_exported_name_exists() -> None:
    missing = [name for name in aiostream_kafka.__all__ if not hasattr(aiostream_kafka, name)]

    assert missing == []


def test_every_error_the_framework_raises_at_users_is_exported() -> None:
    for name in (
        "CheckError",
        "ClusterConnectionError",
        "ClusterUnreachableError",
        "ConfigError",
        "DecodeError",
        "EncodeError",
        "FailoverError",
        "FilterError",
        "GroupActiveError",
        "HandlerCancelledError",
        "NotRunningError",
        "ProcessingTimeoutError",
        "ProduceError",
        "ShutdownError",
        "UnknownClusterError",
        "UnknownJobError",
    ):
        assert name in aiostream_kafka.__all__
        assert issubclass(getattr(aiostream_kafka, name), aiostream_kafka.AiostreamKafkaError)


def test_the_topology_machinery_is_not_exported() -> None:
    internals = {"Cluster", "Event", "Route", "RoutedTopic", "SubscriptionGroup", "Topic", "Topology"}

    assert internals.isdisjoint(aiostream_kafka.__all__)


@pytest.mark.parametrize(
    ("module", "name", "expected", "instead"),
    [
        ("aiostream_kafka", "Event", MonitorEvent, "aiostream_kafka.MonitorEvent"),
        ("aiostream_kafka.instrumentation", "Event", MonitorEvent, "aiostream_kafka.MonitorEvent"),
        ("aiostream_kafka.instrumentation.monitor", "Event", MonitorEvent, "aiostream_kafka.MonitorEvent"),
        ("aiostream_kafka", "Cluster", Cluster, "aiostream_kafka.config.Cluster"),
        ("aiostream_kafka", "Route", Route, "aiostream_kafka.routing.Route"),
        (
            "aiostream_kafka",
            "SubscriptionGroup",
            SubscriptionGroup,
            "aiostream_kafka.routing.SubscriptionGroup",
        ),
        ("aiostream_kafka", "Topic", RoutedTopic, "aiostream_kafka.routing.RoutedTopic"),
        ("aiostream_kafka.routing", "Topic", RoutedTopic, "aiostream_kafka.routing.RoutedTopic"),
        ("aiostream_kafka.routing.topology", "Topic", RoutedTopic, "aiostream_kafka.routing.RoutedTopic"),
        ("aiostream_kafka", "Topology", Topology, "aiostream_kafka.routing.Topology"),
        ("aiostream_kafka.routing.declared", "TopicDeclaration", DeclaredTopic, "DeclaredTopic"),
    ],
)
def test_an_old_name_still_works_and_warns_with_what_to_use(
    module: str, name: str, expected: object, instead: str
) -> None:
    with pytest.warns(DeprecationWarning, match=f"{module}.{name} is deprecated; use {instead}"):
        found = getattr(importlib.import_module(module), name)

    assert found is expected


def test_importing_an_old_name_warns_once_at_the_importing_line() -> None:
    with pytest.warns(DeprecationWarning, match="aiostream_kafka.Event") as warned:
        from aiostream_kafka import Event  # noqa: F401

    assert [w.filename for w in warned] == [__file__]


def test_a_name_that_never_existed_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = aiostream_kafka.Nothing


def test_cluster_is_a_name_on_the_topologys_records_and_what_connects_as_on_messages() -> None:
    app = aiostream_kafka.App("svc", kafka={"bootstrap_servers": "127.0.0.1:9"}, log_events=False)
    primary = app.topology.clusters["primary"]

    producer = aiostream_kafka.Producer(primary, aiostream_kafka.Monitor(), client_id="svc")

    assert producer.cluster == "primary"
    assert app.admin.cluster("primary").cluster == "primary"


def test_a_subscription_group_carries_the_cluster_its_consumer_connects_to() -> None:
    app = aiostream_kafka.App("svc", kafka={"bootstrap_servers": "127.0.0.1:9"}, log_events=False)

    @app.route("orders")
    async def handle(messages: aiostream_kafka.Messages[bytes]) -> None: ...

    (group,) = app.topology.subscription_groups
    (topic,) = group.topics
    assert (group.cluster, topic.cluster) == ("primary", "primary")
    assert group.kafka_cluster is app.topology.clusters["primary"]
