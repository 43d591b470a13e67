"""How a topic should look: what a route's ``config=``, a dead-letter queue's ``config=`` and
``app.topics.declare`` ask of a cluster (its own module, so that every one of them can say it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiostream_kafka.contracts.topics import check_topic_config


@dataclass(frozen=True)
class TopicConfig:
    """How a topic should look on its cluster; ``aiostream-kafka topics migrate`` makes it so.

    ``settings`` are Kafka topic configs (``{"retention.ms": 86400000}``). Partitions only
    grow; the replication factor is set at creation.
    """

    partitions: int = 1
    replication_factor: int = 1
    settings: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_topic_config(self.partitions, self.replication_factor, self.settings)

    def wanted_settings(self) -> dict[str, str]:
        """The settings as the broker reports them: strings (booleans as true/false)."""
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.settings.items()}
