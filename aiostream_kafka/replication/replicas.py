"""``app.replicas``: which cluster holds a MirrorMaker replica of which, and which clusters
the app has failed over from (a setting, or ``AIOSTREAM_KAFKA_FAILED_OVER``), so the same
code runs on the replica after a disaster."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiostream_kafka.config import Cluster
from aiostream_kafka.contracts.checks import did_you_mean
from aiostream_kafka.errors import ConfigError, UnknownClusterError
from aiostream_kafka.replication.policy import POLICIES, PolicyName, ReplicationPolicy
from aiostream_kafka.routing.declared import DeclaredTopic
from aiostream_kafka.routing.route import Route
from aiostream_kafka.routing.topology import MovedCluster, Topology

DEFAULT_POLICY = ReplicationPolicy()
#: Comma-separated source clusters the app runs on their replicas instead (``primary``).
FAILED_OVER_ENV = "AIOSTREAM_KAFKA_FAILED_OVER"


@dataclass(frozen=True)
class Replica:
    """``cluster`` holds MirrorMaker's replica of ``source``.

    ``source_alias`` and ``alias`` are the two clusters' names in MirrorMaker's
    ``clusters = ...`` (by default the app's names): the source's prefixes the replica's
    topics (``default`` policy) and names its checkpoints topic; the replica's names the
    offset-syncs topic on the source, which failback reads.
    """

    cluster: str
    source: str
    policy: ReplicationPolicy = DEFAULT_POLICY
    source_alias: str = ""
    alias: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_alias", self.source_alias or self.source)
        object.__setattr__(self, "alias", self.alias or self.cluster)

    def remote_topic(self, topic: str) -> str:
        return self.policy.remote_topic(self.source_alias, topic)

    @property
    def checkpoints_topic(self) -> str:
        return self.policy.checkpoints_topic(self.source_alias)

    @property
    def heartbeats_topic(self) -> str:
        """On the replica: the source's heartbeats, replicated (their age is the replication lag)."""
        return self.policy.heartbeats_topic(self.source_alias)

    @property
    def offset_syncs_on_source(self) -> str:
        """MirrorMaker's offset syncs where it writes them by default: named after the replica."""
        return self.policy.offset_syncs_topic(self.alias)

    @property
    def offset_syncs_on_replica(self) -> str:
        """With ``offset-syncs.topic.location = target``: on the replica, named after the source."""
        return self.policy.offset_syncs_topic(self.source_alias)


class Replicas:
    """``app.replicas``: ``declare(...)`` replicas; ``fail_over(source)`` runs the source's
    routes, producers and DLQs on its replica (so does ``AIOSTREAM_KAFKA_FAILED_OVER``)."""

    def __init__(self, *, clusters: Collection[str]) -> None:
        self._clusters = clusters
        self._replicas: dict[str, Replica] = {}  # by source cluster
        self._failed_over: set[str] = set()
        self._frozen = False
        #: The app's topology as declared, before anything moved: set when the app builds it.
        self.routed: Topology | None = None

    def declare(
        self,
        cluster: str,
        *,
        of: str,
        policy: PolicyName = "default",
        separator: str = ".",
        source_alias: str | None = None,
        alias: str | None = None,
    ) -> Replica:
        """``cluster`` holds MirrorMaker's replica of cluster ``of``, its topics named by ``policy``."""
        self._check_open(f"app.replicas.declare({cluster!r})")
        where = f"app.replicas.declare({cluster!r}, of={of!r})"
        for name in (cluster, of):
            if name not in self._clusters:
                raise UnknownClusterError.named(name, self._clusters, where)
        if cluster == of:
            raise ConfigError(f"{where}: a cluster cannot be its own replica; name another cluster")
        if policy not in POLICIES:
            raise ConfigError(
                f"{where}: policy={policy!r} is not a MirrorMaker replication policy; choose one of "
                f"{', '.join(POLICIES)}{did_you_mean(str(policy), POLICIES)}"
            )
        if not separator:
            raise ConfigError(f"{where}: separator must not be empty (MirrorMaker's default is '.')")
        if of in self._replicas:
            raise ConfigError(
                f"{where}: cluster {of!r} already has a replica, {self._replicas[of].cluster!r}; "
                f"declare one replica per cluster"
            )
        replica = Replica(cluster, of, ReplicationPolicy(policy, separator), source_alias or "", alias or "")
        self._replicas[of] = replica
        return replica

    def fail_over(self, source: str) -> None:
        """Run what is declared on ``source`` on its replica (after ``aiostream-kafka failover``)."""
        self._check_open(f"app.replicas.fail_over({source!r})")
        self.replica_of(source)
        self._failed_over.add(source)

    def replica_of(self, source: str) -> Replica:
        """The replica declared for ``source``; an error naming the declared ones otherwise."""
        try:
            return self._replicas[source]
        except KeyError:
            declared = ", ".join(f"{r.cluster!r} of {r.source!r}" for r in self) or "none"
            raise ConfigError(
                f"cluster {source!r} has no replica declared (declared: {declared}); "
                f"app.replicas.declare('<replica>', of={source!r})"
            ) from None

    def replica_named(self, cluster: str) -> Replica:
        """The replica held by ``cluster``."""
        for replica in self:
            if replica.cluster == cluster:
                return replica
        declared = ", ".join(repr(r.cluster) for r in self) or "none"
        raise ConfigError(f"cluster {cluster!r} holds no declared replica (declared: {declared})")

    @property
    def failed_over(self) -> list[Replica]:
        """The replicas the app runs on instead of their sources: ``fail_over`` and the environment."""
        sources = set(self._failed_over)
        for name in filter(None, (part.strip() for part in os.environ.get(FAILED_OVER_ENV, "").split(","))):
            if name not in self._replicas:
                raise ConfigError(
                    f"{FAILED_OVER_ENV}={os.environ[FAILED_OVER_ENV]!r}: cluster {name!r} has no replica "
                    f"declared{did_you_mean(name, list(self._replicas))}; declared replicas are of: "
                    f"{', '.join(self._replicas) or 'none'}"
                )
            sources.add(name)
        return [self._replicas[source] for source in sorted(sources)]

    def __iter__(self) -> Iterator[Replica]:
        return iter(self._replicas.values())

    def described(self) -> list[dict[str, Any]]:
        """Each replica as plain data, for ``info`` and the Web UI."""
        failed = {replica.source for replica in self.failed_over}
        return [
            {
                "cluster": replica.cluster,
                "replica_of": replica.source,
                "policy": replica.policy.name,
                "topics_as": replica.remote_topic("<topic>"),
                "checkpoints_topic": replica.checkpoints_topic,
                "failed_over": replica.source in failed,
            }
            for replica in self
        ]

    def __len__(self) -> int:
        return len(self._replicas)

    def freeze(self) -> None:
        self._frozen = True

    def _check_open(self, what: str) -> None:
        if self._frozen:
            raise ConfigError(
                f"{what}: the app's topology is already built; declare replicas before it starts"
            )

    # --- running on replicas ---------------------------------------------------------------

    def move_routes(self, routes: Sequence[Route], primary: str) -> list[Route]:
        """Routes on a failed-over cluster (named, or the primary by default), and their DLQs
        there, moved to its replica under the policy's topic names."""
        moved = {replica.source: replica for replica in self.failed_over}
        if not moved:
            return list(routes)
        result = []
        for route in routes:
            home = route.cluster or (primary if route.kafka is None else None)
            queue = route.dead_letter_queue
            if queue is not None and queue.topic is not None:
                queue_home = queue.cluster or home
                if queue_home in moved:
                    target = moved[queue_home]
                    queue = replace(queue, topic=target.remote_topic(queue.topic), cluster=target.cluster)
            if home in moved:
                target = moved[home]
                route = replace(route, topic=target.remote_topic(route.topic), cluster=target.cluster)
            result.append(replace(route, dead_letter_queue=queue))
        return result

    def move_declarations(
        self, declared: Sequence[DeclaredTopic], *, own: Collection[str] = ()
    ) -> list[DeclaredTopic]:
        """Topics declared on a failed-over cluster, on its replica under the policy's names;
        the ``own`` topics (the Web UI's status reports: not the app's data, never replicated)
        keep their names, on the replica too."""
        moved = {replica.source: replica for replica in self.failed_over}
        return [
            d
            if d.cluster not in moved
            else replace(d, cluster=moved[d.cluster].cluster)
            if d.name in own
            else replace(d, name=moved[d.cluster].remote_topic(d.name), cluster=moved[d.cluster].cluster)
            for d in declared
        ]

    def move_clusters(self, topology: Topology) -> Topology:
        """Each failed-over cluster's name now connects to its replica (``app.producers[name]``
        renames topics as the policy does); nothing connects to the failed cluster."""
        failed = self.failed_over
        if not failed:
            return topology
        for group in topology.subscription_groups:
            if any(group.cluster == replica.source for replica in failed):
                raise ConfigError(
                    f"subscription group {group.id!r} ({', '.join(group.topic_names)}) is on failed-over "
                    f"cluster {group.cluster!r} through inline kafka= settings; name the cluster "
                    f"(cluster={group.cluster!r}) so that its routes move to the replica"
                )
        clusters = dict(topology.clusters)
        moved: dict[str, MovedCluster] = {}
        for replica in failed:
            clusters[replica.source] = Cluster(replica.source, topology.clusters[replica.cluster].settings)
            moved[replica.source] = MovedCluster(replica.cluster, replica.remote_topic(""))
        return replace(
            topology,
            primary=clusters[topology.primary.name],
            clusters=clusters,
            moved=moved,
        )
