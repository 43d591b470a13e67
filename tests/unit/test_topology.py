"""How routes resolve into clusters and subscription groups, before any connection."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiostream_kafka import App, ConfigError, Messages, UnknownClusterError
from aiostream_kafka.routing.routes import Routes
from aiostream_kafka.routing.topology import SubscriptionGroup, Topology, build_topology

PRIMARY = {"bootstrap_servers": "127.0.0.1:19092"}
SECONDARY = {"bootstrap_servers": "127.0.0.1:29092"}


async def handle(messages: Messages[Any]) -> None:
    pass


async def handle_again(messages: Messages[Any]) -> None:
    pass


def make_app(**options: Any) -> App:
    options.setdefault("kafka", PRIMARY)
    return App("svc", log_events=False, **options)


def group_of(topology: Topology, topic: str) -> SubscriptionGroup:
    (group,) = [group for group in topology.subscription_groups if topic in group.topic_names]
    return group


# --- clusters ----------------------------------------------------------------------------


def test_an_inline_kafka_override_puts_its_topic_on_a_second_cluster() -> None:
    app = App("example-app", kafka=PRIMARY, log_events=False)

    @app.route("example")
    async def on_example(messages: Messages[Any]) -> None:
        pass

    @app.route("example2", kafka={"bootstrap_servers": "127.0.0.1:29092"})
    async def on_example2(messages: Messages[Any]) -> None:
        pass

    topology = app.topology

    assert [(group.cluster, group.topic_names) for group in topology.subscription_groups] == [
        ("primary", ("example",)),
        ("127.0.0.1:29092", ("example2",)),
    ]
    assert group_of(topology, "example").kafka_cluster.servers == "127.0.0.1:19092"
    assert group_of(topology, "example2").kafka_cluster.servers == "127.0.0.1:29092"
    assert group_of(topology, "example2").kafka_cluster.inline
    assert list(topology.clusters) == ["primary", "127.0.0.1:29092"]


def test_topics_on_the_same_cluster_with_the_same_settings_share_one_subscription_group() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("payments", handler=handle)

    (group,) = app.topology.subscription_groups

    assert group.topic_names == ("orders", "payments")
    assert group.id == "primary/svc/default"


def test_two_inline_overrides_with_the_same_servers_written_differently_are_one_cluster() -> None:
    app = make_app()
    app.routes.topic("a", handler=handle, kafka={"bootstrap_servers": "127.0.0.1:29092,127.0.0.1:29093"})
    app.routes.topic("b", handler=handle, kafka={"bootstrap.servers": " 127.0.0.1:29093 , 127.0.0.1:29092"})

    topology = app.topology

    assert len(topology.clusters) == 2
    (group,) = [group for group in topology.subscription_groups if group.kafka_cluster.inline]
    assert group.topic_names == ("a", "b")


def test_an_inline_override_equal_to_a_named_cluster_is_that_named_cluster() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic("clicks", handler=handle, kafka={"bootstrap.servers": "127.0.0.1:29092"})

    topology = app.topology

    assert group_of(topology, "clicks").cluster == "analytics"
    assert list(topology.clusters) == ["primary", "analytics"]


def test_an_inline_override_equal_to_the_primary_is_the_primary() -> None:
    app = make_app()
    app.routes.topic("clicks", handler=handle, kafka={"bootstrap.servers": "127.0.0.1:19092"})

    assert group_of(app.topology, "clicks").cluster == "primary"
    assert list(app.topology.clusters) == ["primary"]


def test_topics_on_different_clusters_never_share_a_subscription_group() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic("orders", handler=handle)
    app.routes.topic("clicks", handler=handle, cluster="analytics")

    topology = app.topology

    assert len(topology.subscription_groups) == 2
    assert group_of(topology, "orders").cluster == "primary"
    assert group_of(topology, "clicks").cluster == "analytics"


def test_an_unknown_cluster_is_refused_where_the_route_is_declared_suggesting_the_closest() -> None:
    app = make_app(clusters={"analytics": SECONDARY})

    with pytest.raises(
        UnknownClusterError,
        match=r"^route for topic 'clicks': no cluster named 'analytic'; the app has: primary, analytics; "
        r"did you mean 'analytics'\?$",
    ):
        app.routes.topic("clicks", handler=handle, cluster="analytic")
    assert list(app.routes) == []


def test_a_name_that_may_be_an_inline_clusters_is_left_to_the_topology() -> None:
    # An inline kafka={...} is a cluster named after its servers; only the topology knows them.
    app = make_app()
    app.routes.topic("clicks", handler=handle, kafka=SECONDARY)
    app.routes.topic("views", handler=handle, cluster="127.0.0.1:29092")
    app.routes.topic("likes", handler=handle, cluster="127.0.0.1:39092")

    with pytest.raises(
        UnknownClusterError,
        match=r"^route for topic 'likes': no cluster named '127.0.0.1:39092'; "
        r"the app has: primary, 127.0.0.1:29092; did you mean '127.0.0.1:29092'\?$",
    ):
        _ = app.topology


def test_routes_declared_without_the_apps_clusters_are_checked_when_the_topology_is_built() -> None:
    routes = Routes()
    routes.topic("clicks", handler=handle, cluster="analytic")  # nothing to check it against yet
    primary = make_app().topology.primary

    with pytest.raises(
        UnknownClusterError,
        match=r"^route for topic 'clicks': no cluster named 'analytic'; the app has: primary$",
    ):
        build_topology(primary=primary, named={}, routes=list(routes), default_group_id="svc")


def test_two_named_clusters_with_the_same_connection_settings_are_rejected() -> None:
    app = make_app(clusters={"analytics": SECONDARY, "reporting": {"bootstrap.servers": "127.0.0.1:29092"}})

    with pytest.raises(ConfigError, match=r"clusters 'analytics' and 'reporting' have the same connection"):
        _ = app.topology


def test_a_named_cluster_with_the_primarys_settings_is_rejected() -> None:
    app = make_app(clusters={"again": PRIMARY})

    with pytest.raises(ConfigError, match=r"clusters 'primary' and 'again' have the same connection"):
        _ = app.topology


def test_a_named_cluster_called_like_the_primary_is_rejected() -> None:
    app = make_app(clusters={"primary": SECONDARY})

    with pytest.raises(ConfigError, match=r"cluster 'primary' is defined twice"):
        _ = app.topology


def test_the_primary_can_be_one_of_the_named_clusters() -> None:
    app = App("svc", clusters={"main": PRIMARY, "analytics": SECONDARY}, primary="main", log_events=False)
    app.routes.topic("orders", handler=handle)

    topology = app.topology

    assert topology.primary.name == "main"
    assert list(topology.clusters) == ["main", "analytics"]
    assert group_of(topology, "orders").cluster == "main"
    assert topology.producer_cluster == "main"


def test_an_unknown_key_in_an_inline_override_names_the_route() -> None:
    app = make_app()
    app.routes.topic("clicks", handler=handle, kafka={"bootstrap_server": "127.0.0.1:29092"})

    with pytest.raises(
        ConfigError,
        match=r"^route for topic 'clicks', kafka=: unknown Kafka setting 'bootstrap_server'; "
        r"did you mean 'bootstrap_servers'\?",
    ):
        _ = app.topology


# --- producer cluster --------------------------------------------------------------------


def test_the_producer_cluster_is_the_primary_by_default() -> None:
    app = make_app(clusters={"analytics": SECONDARY})

    assert app.topology.producer_cluster == "primary"


def test_the_producer_cluster_can_be_a_named_cluster() -> None:
    app = make_app(clusters={"analytics": SECONDARY}, producer_cluster="analytics")

    assert app.topology.producer_cluster == "analytics"


def test_an_unknown_producer_cluster_is_rejected_when_the_app_is_made_listing_the_clusters() -> None:
    with pytest.raises(
        UnknownClusterError,
        match=r"^App\(producer_cluster=\.\.\.\): no cluster named 'analitics'; "
        r"the app has: primary, analytics; did you mean 'analytics'\?$",
    ):
        make_app(clusters={"analytics": SECONDARY}, producer_cluster="analitics")


# --- subscription groups -----------------------------------------------------------------


def test_the_subscription_group_option_splits_topics_into_their_own_group() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("reports", handler=handle, subscription_group="slow")

    topology = app.topology

    assert group_of(topology, "orders").name == "default"
    assert group_of(topology, "reports").name == "slow"
    assert group_of(topology, "reports").id == "primary/svc/slow"


def test_a_subscription_group_block_groups_the_routes_declared_inside_it() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    with app.routes.subscription_group("slow"):
        app.routes.topic("reports", handler=handle)
        app.routes.topic("exports", handler=handle)
    app.routes.topic("payments", handler=handle)

    topology = app.topology

    assert [(group.name, group.topic_names) for group in topology.subscription_groups] == [
        ("default", ("orders", "payments")),
        ("slow", ("reports", "exports")),
    ]


def test_the_subscription_group_option_wins_over_the_enclosing_block() -> None:
    app = make_app()
    with app.routes.subscription_group("slow"):
        app.routes.topic("reports", handler=handle, subscription_group="fast")

    assert group_of(app.topology, "reports").name == "fast"


def test_a_subscription_group_needs_a_name() -> None:
    app = make_app()

    with (
        pytest.raises(ConfigError, match=r"a subscription group needs a non-empty name, not ''"),
        app.routes.subscription_group(""),
    ):
        pass


def test_different_max_messages_split_groups_with_distinct_names() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("reports", handler=handle, max_messages=10)

    topology = app.topology

    assert group_of(topology, "orders").max_messages == 100
    assert group_of(topology, "reports").max_messages == 10
    assert len({group.id for group in topology.subscription_groups}) == 2


def test_different_max_waits_split_groups() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("reports", handler=handle, max_wait=5)

    assert len(app.topology.subscription_groups) == 2
    assert group_of(app.topology, "reports").max_wait_ms == 5000


def test_inline_consumer_settings_that_differ_split_groups_on_the_same_cluster() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("reports", handler=handle, kafka={**PRIMARY, "fetch.wait.max.ms": "100"})

    topology = app.topology

    assert group_of(topology, "reports").cluster == "primary"
    assert group_of(topology, "reports").consumer_settings == {
        "fetch_max_wait_ms": 100,
        "isolation_level": "read_committed",
    }
    assert group_of(topology, "orders").consumer_settings == {"isolation_level": "read_committed"}


def test_inactive_routes_are_left_out_of_subscription_groups() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("legacy", handler=handle, active=False)

    topology = app.topology

    assert [group.topic_names for group in topology.subscription_groups] == [("orders",)]
    assert [topic.name for topic in topology.inactive] == ["legacy"]


def test_an_inactive_route_does_not_count_as_routing_its_topic_twice() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("orders", handler=handle_again, active=False)

    assert [group.topic_names for group in app.topology.subscription_groups] == [("orders",)]


# --- a topic routed twice ----------------------------------------------------------------


def test_a_topic_routed_twice_on_the_same_cluster_and_group_names_the_topic_and_cluster() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("orders", handler=handle_again, subscription_group="other")

    with pytest.raises(
        ConfigError, match=r"topic 'orders' is routed twice on cluster 'primary' in consumer group 'svc'"
    ) as raised:
        _ = app.topology

    assert "handle_again" in str(raised.value)


def test_the_same_topic_in_another_consumer_group_is_fine() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("orders", handler=handle_again, group_id="audit")

    topology = app.topology

    assert sorted(group.id for group in topology.subscription_groups) == [
        "primary/audit/default",
        "primary/svc/default",
    ]


def test_the_same_topic_on_another_cluster_is_fine() -> None:
    app = make_app(clusters={"analytics": SECONDARY})
    app.routes.topic("orders", handler=handle)
    app.routes.topic("orders", handler=handle_again, cluster="analytics")

    topology = app.topology

    assert [(group.cluster, group.topic_names) for group in topology.subscription_groups] == [
        ("primary", ("orders",)),
        ("analytics", ("orders",)),
    ]


# --- group_id and initial_offset ---------------------------------------------------------


def test_the_group_id_defaults_to_the_app_name() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)

    assert group_of(app.topology, "orders").group_id == "svc"


def test_the_app_group_id_wins_over_the_app_name() -> None:
    app = make_app(group_id="orders-service")
    app.routes.topic("orders", handler=handle)

    assert group_of(app.topology, "orders").group_id == "orders-service"


def test_a_group_id_in_the_kafka_settings_wins_over_the_app_group_id() -> None:
    app = make_app(kafka={**PRIMARY, "group.id": "from-settings"}, group_id="orders-service")
    app.routes.topic("orders", handler=handle)

    group = group_of(app.topology, "orders")

    assert group.group_id == "from-settings"
    assert "group_id" not in group.consumer_settings


def test_the_route_group_id_wins_over_everything() -> None:
    app = make_app(kafka={**PRIMARY, "group.id": "from-settings"}, group_id="orders-service")
    app.routes.topic("orders", handler=handle, group_id="from-route")

    assert group_of(app.topology, "orders").group_id == "from-route"


def test_the_initial_offset_defaults_to_earliest() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)

    assert group_of(app.topology, "orders").initial_offset == "earliest"


def test_auto_offset_reset_in_the_settings_sets_the_initial_offset() -> None:
    app = make_app(kafka={**PRIMARY, "auto.offset.reset": "latest"})
    app.routes.topic("orders", handler=handle)

    group = group_of(app.topology, "orders")

    assert group.initial_offset == "latest"
    assert "auto_offset_reset" not in group.consumer_settings


def test_the_route_initial_offset_wins_over_auto_offset_reset() -> None:
    app = make_app(kafka={**PRIMARY, "auto.offset.reset": "latest"})
    app.routes.topic("orders", handler=handle, initial_offset="earliest")

    assert group_of(app.topology, "orders").initial_offset == "earliest"


def test_an_auto_offset_reset_other_than_earliest_or_latest_is_refused_where_it_is_set() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^App\(kafka=\.\.\.\): auto\.offset\.reset must be one of earliest, latest, not 'smallest'$",
    ):
        make_app(kafka={**PRIMARY, "auto.offset.reset": "smallest"})


def test_different_initial_offsets_split_groups() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    app.routes.topic("audit", handler=handle, initial_offset="latest")

    assert len(app.topology.subscription_groups) == 2


# --- payload decoders --------------------------------------------------------------------


def test_a_format_msgspec_does_not_know_names_the_route() -> None:
    app = make_app()

    with pytest.raises(
        ConfigError,
        match=re.escape("route for topic 'orders': format must be one of json, msgpack, not 'avro'"),
    ):
        app.routes.topic("orders", handler=handle, payload=dict, format="avro")


def test_a_payload_type_msgspec_cannot_decode_names_the_route() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle, payload=object())

    with pytest.raises(ConfigError, match=r"^route for topic 'orders': msgspec cannot decode into payload="):
        _ = app.topology


def test_bytes_payload_routes_have_no_decoder() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)

    (topic,) = group_of(app.topology, "orders").topics

    assert topic.decoder is None


# --- building freezes the routes ---------------------------------------------------------


def test_routes_cannot_be_added_after_the_topology_is_built() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)
    _ = app.topology

    with pytest.raises(
        ConfigError, match=r"^cannot add a route for topic 'late': the app's topology is already"
    ):
        app.routes.topic("late", handler=handle)


def test_the_route_decorator_cannot_add_routes_after_the_topology_is_built() -> None:
    app = make_app()
    _ = app.topology

    with pytest.raises(ConfigError, match=r"cannot add a route for topic 'late'"):
        app.route("late")(handle)


def test_the_topology_is_built_once() -> None:
    app = make_app()
    app.routes.topic("orders", handler=handle)

    assert app.topology is app.topology


def test_generated_subscription_group_names_never_collide_with_declared_ones() -> None:
    app = make_app()
    app.routes.topic("a", handler=handle)
    app.routes.topic("b", handler=handle, subscription_group="default-2")
    app.routes.topic("c", handler=handle, max_messages=10)

    ids = [group.id for group in app.topology.subscription_groups]

    assert len(set(ids)) == 3
    assert ids == ["primary/svc/default", "primary/svc/default-2", "primary/svc/default-3"]


def test_an_inactive_route_with_inline_settings_adds_no_cluster() -> None:
    app = make_app()
    app.routes.topic("old", handler=handle, active=False, kafka={"bootstrap_servers": "10.9.9.9:9092"})

    assert "10.9.9.9:9092" not in app.topology.clusters
    assert [topic.name for topic in app.topology.inactive] == ["old"]


def test_routes_read_committed_unless_the_cluster_or_the_route_says_otherwise() -> None:
    app = make_app(clusters={"analytics": {**SECONDARY, "isolation.level": "read_uncommitted"}})
    app.routes.topic("orders", handler=handle)
    app.routes.topic("audit", handler=handle, isolation_level="read_uncommitted")
    app.routes.topic("clicks", handler=handle, cluster="analytics")

    topology = app.topology

    assert group_of(topology, "orders").consumer_settings["isolation_level"] == "read_committed"
    assert group_of(topology, "audit").consumer_settings["isolation_level"] == "read_uncommitted"
    assert group_of(topology, "clicks").consumer_settings["isolation_level"] == "read_uncommitted"
    assert group_of(topology, "orders") is not group_of(topology, "audit")  # a consumer each


def test_an_isolation_level_that_does_not_exist_names_the_route() -> None:
    app = make_app()
    with pytest.raises(
        ConfigError, match=r"route for topic 'orders': isolation_level must be 'read_committed'"
    ):
        app.routes.topic("orders", handler=handle, isolation_level="committed")
