"""Resolving routes into clusters, subscription groups and topics, checked before connecting.

Each declaration was checked on its own when it was made (``contracts``); what is refused
here only the whole app can tell: a topic routed twice, two names for one cluster, a DLQ
that is its own topic, and a cluster named that no declaration could know (an inline
cluster's, or any, for routes declared without the app's clusters at hand).

The grouping rule: topics share one consumer, a subscription group, when they
agree on cluster, consumer group id, explicit subscription group name and consumer
settings. Topics on different clusters never share one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiostream_kafka.codecs import Decoder, build_decoder
from aiostream_kafka.config import Cluster, KafkaSettings, frozen_items
from aiostream_kafka.contracts.route import cross_cluster_dead_letters, unknown_dead_letter_cluster
from aiostream_kafka.deprecation import module_getattr
from aiostream_kafka.errors import ConfigError, UnknownClusterError
from aiostream_kafka.routing.declared import DeclaredTopic
from aiostream_kafka.routing.route import DEFAULT_ISOLATION_LEVEL, Route

DEFAULT_SUBSCRIPTION_GROUP = "default"


@dataclass(frozen=True)
class RoutedTopic:
    """A route resolved: the topic, the cluster it is consumed from and its payload decoder."""

    name: str
    route: Route
    cluster: str
    decoder: Decoder | None

    @property
    def dead_letter_cluster(self) -> str:
        """Where this topic's DLQ lives: the cluster named, else the topic's own cluster."""
        queue = self.route.dead_letter_queue
        return queue.cluster if queue is not None and queue.cluster else self.cluster


@dataclass(frozen=True)
class SubscriptionGroup:
    """Topics consumed through one ``AIOKafkaConsumer``: one Listener runs each."""

    name: str
    cluster: str
    kafka_cluster: Cluster  # what the Listener's consumer connects to
    group_id: str
    topics: tuple[RoutedTopic, ...]
    consumer_settings: Mapping[str, Any]
    max_messages: int
    max_wait_ms: int  # the routes' max_wait, as aiokafka's getmany(timeout_ms=) takes it
    initial_offset: str
    max_poll_records: int | None = None  # None: the listener's default (see Listener.poll_size)

    @property
    def id(self) -> str:
        return f"{self.cluster}/{self.group_id}/{self.name}"

    @property
    def exactly_once(self) -> tuple[RoutedTopic, ...]:
        """Its exactly-once topics (each partition gets a transactional producer)."""
        return tuple(topic for topic in self.topics if topic.route.exactly_once)

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(topic.name for topic in self.topics)


@dataclass(frozen=True)
class MovedCluster:
    """A failed-over cluster (docs/disaster-recovery.md): its name connects to ``replica``, where
    its topics are named ``prefix + topic`` (MirrorMaker's policy; ``""`` for identity)."""

    replica: str
    prefix: str


@dataclass(frozen=True)
class Topology:
    primary: Cluster
    clusters: Mapping[str, Cluster]
    producer_cluster: str  # the cluster of app.producer
    subscription_groups: tuple[SubscriptionGroup, ...]
    inactive: tuple[RoutedTopic, ...] = ()  # resolved like the others, but never consumed
    declared: tuple[DeclaredTopic, ...] = ()
    moved: Mapping[str, MovedCluster] = field(default_factory=dict)  # failed over, by cluster name

    @property
    def topics(self) -> tuple[RoutedTopic, ...]:
        """Every consumed topic, in route order."""
        return tuple(topic for group in self.subscription_groups for topic in group.topics)

    @property
    def transactional(self) -> bool:
        """Whether anything runs in transactions: an exactly-once route, or a cluster's producer
        with a transactional_id (then every producer looks for the transaction a send is in)."""
        return any(topic.route.exactly_once for topic in self.topics) or any(
            "transactional_id" in cluster.settings.producer for cluster in self.clusters.values()
        )

    def clusters_of(self, topic: str) -> list[str]:
        """The clusters this app consumes ``topic`` from or declares it on."""
        names = [t.cluster for t in self.topics if t.name == topic]
        names += [d.cluster for d in self.declared if d.name == topic]
        return sorted(set(names))

    def cluster(self, name: str) -> Cluster:
        try:
            return self.clusters[name]
        except KeyError:
            raise UnknownClusterError.named(name, self.clusters) from None


def resolve_clusters(primary: Cluster, named: Mapping[str, Cluster]) -> dict[str, Cluster]:
    """The primary and the named clusters, refusing two names for one set of connection settings."""
    clusters = {primary.name: primary}
    by_identity = {primary.settings.identity_key(): primary.name}
    for name, cluster in named.items():
        if name in clusters:
            raise ConfigError(f"cluster {name!r} is defined twice (the primary is named {primary.name!r})")
        same = by_identity.get(cluster.settings.identity_key())
        if same is not None:
            raise ConfigError(
                f"clusters {same!r} and {name!r} have the same connection settings; they are one "
                f"cluster, so keep one name"
            )
        clusters[name] = cluster
        by_identity[cluster.settings.identity_key()] = name
    return clusters


def build_topology(
    *,
    primary: Cluster,
    named: Mapping[str, Cluster],
    routes: Sequence[Route],
    default_group_id: str,
    producer_cluster: str | None = None,
    declarations: Sequence[DeclaredTopic] = (),
) -> Topology:
    clusters = resolve_clusters(primary, named)
    groups: dict[tuple[Any, ...], list[RoutedTopic]] = {}
    group_settings: dict[tuple[Any, ...], dict[str, Any]] = {}
    routed: dict[tuple[str, str, str], Route] = {}
    inactive = []

    for route in routes:
        cluster, settings = _route_cluster(route, clusters, register=route.active)
        consumer_settings = {**settings.client, **settings.consumer}
        group_id = route.group_id or consumer_settings.pop("group_id", None) or default_group_id
        consumer_settings.pop("group_id", None)
        initial_offset = route.initial_offset or consumer_settings.pop("auto_offset_reset", "earliest")
        consumer_settings.pop("auto_offset_reset", None)  # earliest or latest: config.RULES
        consumer_settings["isolation_level"] = (
            route.isolation_level or consumer_settings.get("isolation_level") or DEFAULT_ISOLATION_LEVEL
        )
        if route.exactly_once and consumer_settings["isolation_level"] != DEFAULT_ISOLATION_LEVEL:
            raise ConfigError(
                f"{route.label}: exactly_once=True reads committed records only, but cluster "
                f"{cluster.name!r} sets isolation_level={consumer_settings['isolation_level']!r}; "
                f"give the route isolation_level='read_committed'"
            )
        decoder = build_decoder(route.payload, route.format, route.decoder, where=route.label)
        topic = RoutedTopic(route.topic, route, cluster.name, decoder)
        _check_dead_letter_queue(topic, clusters)
        if not route.active:
            inactive.append(topic)
            continue

        seen = routed.get((cluster.name, group_id, route.topic))
        if seen is not None:
            raise ConfigError(
                f"{route.label}: topic {route.topic!r} is routed twice on cluster {cluster.name!r} in "
                f"consumer group {group_id!r} (to {seen.handler_name} and {route.handler_name}); "
                f"give one route another group_id, or handle both in one handler"
            )
        routed[(cluster.name, group_id, route.topic)] = route

        key = (
            cluster.name,
            group_id,
            route.subscription_group or DEFAULT_SUBSCRIPTION_GROUP,
            frozen_items(consumer_settings),
            route.max_messages,
            round(route.max_wait * 1000),  # aiokafka's getmany(timeout_ms=)
            initial_offset,
            route.max_poll_records,
        )
        groups.setdefault(key, []).append(topic)
        group_settings[key] = consumer_settings

    subscription_groups = []
    names_taken: dict[tuple[str, str], set[str]] = {}
    explicit_names = {key[2] for key in groups}  # a generated name never takes a declared one
    for key, topics in groups.items():
        cluster_name, group_id, base_name, _, max_messages, max_wait_ms, initial_offset, max_poll_records = (
            key
        )
        taken = names_taken.setdefault((cluster_name, group_id), set())
        name, n = base_name, 1
        while name in taken or (name != base_name and name in explicit_names):
            n += 1
            name = f"{base_name}-{n}"
        taken.add(name)
        subscription_groups.append(
            SubscriptionGroup(
                name=name,
                cluster=cluster_name,
                kafka_cluster=clusters[cluster_name],
                group_id=group_id,
                topics=tuple(topics),
                consumer_settings=group_settings[key],
                max_messages=max_messages,
                max_wait_ms=max_wait_ms,
                initial_offset=initial_offset,
                max_poll_records=max_poll_records,
            )
        )

    if producer_cluster is not None and producer_cluster not in clusters:
        raise UnknownClusterError.named(producer_cluster, clusters, "App(producer_cluster=...)")
    return Topology(
        primary=primary,
        clusters=clusters,
        producer_cluster=producer_cluster or primary.name,
        subscription_groups=tuple(subscription_groups),
        inactive=tuple(inactive),
        declared=_declared(subscription_groups, declarations, clusters),
    )


def _declared(
    groups: Sequence[SubscriptionGroup],
    declarations: Sequence[DeclaredTopic],
    clusters: Mapping[str, Cluster],
) -> tuple[DeclaredTopic, ...]:
    """Route and dead-letter queue configs and ``app.topics`` declarations, one per (cluster,
    topic); the same topic declared twice alike is one, declared twice otherwise is refused."""
    wanted: list[DeclaredTopic] = []
    for routed in (routed for group in groups for routed in group.topics):
        route = routed.route
        if route.config is not None:
            wanted.append(DeclaredTopic(routed.name, routed.cluster, route.config, route.label))
        queue = route.dead_letter_queue
        if queue is not None and queue.topic is not None and queue.config is not None:
            source = f"the dead-letter queue of {route.label}"
            wanted.append(DeclaredTopic(queue.topic, routed.dead_letter_cluster, queue.config, source))
    for declared in declarations:
        if declared.cluster not in clusters:
            raise UnknownClusterError.named(declared.cluster, clusters, declared.source)
        wanted.append(declared)
    unique: dict[tuple[str, str], DeclaredTopic] = {}
    for topic in wanted:
        seen = unique.setdefault((topic.cluster, topic.name), topic)
        if seen.config != topic.config:
            raise ConfigError(
                f"topic {topic.name!r} on cluster {topic.cluster!r} is declared twice with different "
                f"settings ({seen.source} and {topic.source}); keep one"
            )
    return tuple(unique.values())


def _route_cluster(
    route: Route, clusters: dict[str, Cluster], *, register: bool
) -> tuple[Cluster, KafkaSettings]:
    """The cluster a route consumes from, and the settings its consumer uses.

    An inline ``kafka={...}`` that matches a known cluster's connection settings is that
    cluster; otherwise it becomes a cluster of its own, named after its servers, which
    later inline routes with the same settings join. An inactive route's settings are
    checked but add no cluster (no producer, no connection for something that never runs).
    """
    if route.cluster is not None:
        if route.cluster not in clusters:
            raise UnknownClusterError.named(route.cluster, clusters, route.label)
        cluster = clusters[route.cluster]
        return cluster, cluster.settings
    if route.kafka is None:
        primary = next(iter(clusters.values()))
        return primary, primary.settings
    settings = KafkaSettings.parse(route.kafka, where=f"{route.label}, kafka=")
    for cluster in clusters.values():
        if cluster.settings.identity_key() == settings.identity_key():
            return cluster, settings
    name = ",".join(settings.bootstrap_servers)
    if name in clusters:
        raise ConfigError(
            f"{route.label}: inline kafka= points at {name} with other security settings than the "
            f"cluster already known by that address; name the clusters in App(clusters=...)"
        )
    cluster = Cluster(name, settings, inline=True)
    if register:
        clusters[name] = cluster
    return cluster, settings


def _check_dead_letter_queue(topic: RoutedTopic, clusters: Mapping[str, Cluster]) -> None:
    queue = topic.route.dead_letter_queue
    if queue is None:
        return
    if topic.dead_letter_cluster not in clusters:
        raise unknown_dead_letter_cluster(topic.route, clusters)
    if topic.route.exactly_once and queue.topic is not None and topic.dead_letter_cluster != topic.cluster:
        raise cross_cluster_dead_letters(topic.route, topic.cluster, topic.dead_letter_cluster)
    if queue.topic == topic.name and topic.dead_letter_cluster == topic.cluster:
        raise ConfigError(
            f"{topic.route.label}: the dead-letter queue is the topic itself, so a failing message "
            f"would come back forever; give the DLQ its own topic"
        )


__getattr__ = module_getattr(
    __name__,
    {"Topic": ("aiostream_kafka.routing.topology:RoutedTopic", "aiostream_kafka.routing.RoutedTopic")},
)
