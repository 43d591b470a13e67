"""What the admin API returns: plain, frozen records (no aiokafka structures leak out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Broker:
    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterInfo:
    cluster: str  # our name for it
    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[Broker, ...]


@dataclass(frozen=True)
class TopicDescription:
    name: str
    partitions: int
    replication_factor: int
    internal: bool = False


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: what ``create_topics`` takes."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    settings: Mapping[str, str] = field(default_factory=dict)  # Kafka topic configs, e.g. retention.ms


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed this partition
    end: int

    @property
    def lag(self) -> int:
        """Messages the group has not committed yet (all of them when it never committed)."""
        return self.end - (self.committed or 0)


@dataclass(frozen=True)
class ConsumerGroupInfo:
    group_id: str
    state: str  # Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, Unknown
    members: int
    partitions: tuple[PartitionLag, ...]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)
