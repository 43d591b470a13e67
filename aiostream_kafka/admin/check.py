"""Boot-time validation: the multi-cluster mistakes found before the first message, not after.

Each cluster must answer within a timeout (a cluster that does not says why: refused at
once, unresolvable, timed out or a TLS failure); each routed topic and each dead-letter
topic must exist on *its* cluster. A topic missing there but present on another cluster is the
classic mismatched-cluster mistake, and the error says so, naming both. A cluster that runs
transactions (an exactly-once route, a producer with a ``transactional_id``) must grant a
transactional producer: one with fewer brokers than its transaction log's replication
factor (3 by default) never does, and the app's first batch would wait for ever.
"""

from __future__ import annotations

import anyio

from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.admin.types import TopicSpec
from aiostream_kafka.config import Cluster
from aiostream_kafka.diagnosis import PROBE_TIMEOUT, likely_reason
from aiostream_kafka.errors import ClusterConnectionError, ConfigError
from aiostream_kafka.routing.declared import DeclaredTopic
from aiostream_kafka.routing.topology import Topology
from aiostream_kafka.runtime.clients import KafkaClients


class CheckError(ConfigError):
    """Everything ``app.check()`` found wrong, one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the app's Kafka setup has problems:\n" + "\n".join(f"  - {p}" for p in problems))


async def check_clusters_and_topics(
    topology: Topology,
    admins: AdminRegistry,
    *,
    within: float = 10.0,
    auto_create: bool = False,
    clients: KafkaClients | None = None,
    client_id: str = "aiostream-kafka",
) -> list[str]:
    """Raise ``CheckError`` listing every problem; return notes on what ``auto_create`` created,
    and on exactly-once routes whose cluster is not ``app.producer``'s."""
    problems: list[str] = []
    existing: dict[str, set[str]] = {}
    for name, cluster in topology.clusters.items():
        try:
            with anyio.fail_after(within):
                existing[name] = set(await admins.cluster(name).list_topics())
        except ClusterConnectionError as error:  # it names the cluster, its servers and why
            problems.append(str(error))
        except TimeoutError:
            problems.append(await _silent(cluster, within))
        except Exception as error:
            problems.append(f"cluster {name!r} ({cluster.servers}) failed: {error!r}")

    needed = needed_topics(topology)
    notes: list[str] = []
    declared = {(d.cluster, d.name): d for d in topology.declared}
    for home, name, who in needed:
        if home not in existing or name in existing[home]:
            continue
        declaration = declared.get((home, name))
        if auto_create and declaration is not None:
            await _create(admins, declaration)
            existing[home].add(name)
            notes.append(f"created topic {name!r} on cluster {home!r} ({declaration.source})")
            continue
        servers = topology.clusters[home].servers
        elsewhere = sorted(c for c, topics in existing.items() if c != home and name in topics)
        if elsewhere:
            problems.append(
                f"{who}: topic {name!r} is not on cluster {home!r} ({servers}) but is on "
                f"{', '.join(repr(c) for c in elsewhere)}: is it pointed at the wrong cluster?"
            )
        else:
            hint = (
                "run `aiostream-kafka topics migrate`"
                if declaration
                else "declare it and run `topics migrate`"
            )
            problems.append(f"{who}: topic {name!r} does not exist on cluster {home!r} ({servers}); {hint}")
    for name in _transactional_clusters(topology):
        if name in existing:
            cluster = topology.clusters[name]
            refusal = await _transactions_refused(cluster, clients or KafkaClients(), within, client_id)
            if refusal is not None:
                problems.append(refusal)
    if problems:
        raise CheckError(problems)
    return notes + _cross_cluster_notes(topology)


def _transactional_clusters(topology: Topology) -> list[str]:
    """The clusters that run transactions: an exactly-once route's, a transactional producer's."""
    names = {topic.cluster for topic in topology.topics if topic.route.exactly_once}
    names |= {name for name, c in topology.clusters.items() if "transactional_id" in c.settings.producer}
    return sorted(names)


async def _transactions_refused(
    cluster: Cluster, clients: KafkaClients, within: float, client_id: str
) -> str | None:
    """Why ``cluster`` does not grant a transactional producer, if it does not."""
    producer = clients.producer(
        cluster,
        client_id=f"{client_id}-check",
        transactional_id=f"{client_id}.check.{cluster.name}",
        enable_idempotence=True,
        acks="all",
    )
    where = f"cluster {cluster.name!r} ({cluster.servers})"
    try:
        with anyio.fail_after(within):
            await producer.start()  # asks for a producer id: what every transactional producer does
    except TimeoutError:
        return (
            f"{where} did not grant a transactional producer within {within:g}s, and exactly-once "
            f"routes and transactions need one: a cluster with fewer brokers than its "
            f"transaction.state.log.replication.factor (3 by default) never does"
        )
    except Exception as error:
        return f"{where} cannot run transactions: {type(error).__name__}: {error}"
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(within):
            await producer.stop()
    return None


def _cross_cluster_notes(topology: Topology) -> list[str]:
    """Exactly-once routes whose cluster is not ``app.producer``'s: a produce through
    ``app.producer`` inside their batches is refused (a transaction covers one cluster)."""
    return [
        f"{topic.route.label} is exactly-once on cluster {topic.cluster!r}, but app.producer sends "
        f"to {topology.producer_cluster!r}: inside its batches produce through "
        f"app.producers[{topic.cluster!r}] (a produce to another cluster is refused there)"
        for topic in topology.topics
        if topic.route.exactly_once and topic.cluster != topology.producer_cluster
    ]


def needed_topics(topology: Topology) -> list[tuple[str, str, str]]:
    """Every topic the app needs, as (cluster, topic, who needs it): routed, dead-letter, declared."""
    needed: list[tuple[str, str, str]] = []
    for topic in topology.topics:
        needed.append((topic.cluster, topic.name, topic.route.label))
        queue = topic.route.dead_letter_queue
        if queue is not None and queue.topic is not None:
            needed.append(
                (topic.dead_letter_cluster, queue.topic, f"the dead-letter queue of {topic.route.label}")
            )
    needed += [(d.cluster, d.name, d.source) for d in topology.declared]
    return list(dict.fromkeys(needed))


async def _silent(cluster: Cluster, within: float) -> str:
    """A cluster that did not answer within ``within`` seconds, and what a probe finds there."""
    reason = await likely_reason(cluster, within=min(within, PROBE_TIMEOUT))
    where = f"cluster {cluster.name!r} ({cluster.servers})"
    return f"{where} did not answer within {within:g}s: {reason.text}"


async def _create(admins: AdminRegistry, declared: DeclaredTopic) -> None:
    config = declared.config
    spec = TopicSpec(declared.name, config.partitions, config.replication_factor, config.wanted_settings())
    await admins.cluster(declared.cluster).create_topics([spec])
