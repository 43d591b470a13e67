"""Making every cluster's topics what the app declares: ``topics plan`` and ``topics migrate``.

Every cluster is planned, secondaries included. Nothing is ever deleted, partitions only
grow, and a replication factor is only set at creation: what cannot be done is listed as
refused, with why, instead of being forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.admin.types import TopicSpec
from aiostream_kafka.routing.declared import DeclaredTopic
from aiostream_kafka.routing.topology import Topology

Action = Literal["create", "repartition", "reconfigure", "refused"]


@dataclass(frozen=True)
class Change:
    cluster: str
    topic: str
    action: Action
    detail: str
    declared: DeclaredTopic

    def __str__(self) -> str:
        return f"{self.cluster}: {self.action} {self.topic} ({self.detail})"


async def plan(topology: Topology, admins: AdminRegistry, *, cluster: str | None = None) -> list[Change]:
    """What ``migrate`` would do, per cluster; empty when every cluster matches the declarations."""
    if cluster is not None:
        topology.cluster(cluster)  # an unknown name is an error, not an empty plan
    changes: list[Change] = []
    for name in topology.clusters:
        declared = [d for d in topology.declared if d.cluster == name]
        if not declared or (cluster is not None and name != cluster):
            continue
        admin = admins.cluster(name)
        existing = await admin.describe_topics(d.name for d in declared)
        for topic in declared:
            config = topic.config
            current = existing.get(topic.name)
            if current is None:
                settings = ", ".join(f"{k}={v}" for k, v in sorted(config.wanted_settings().items()))
                detail = f"{config.partitions} partitions, replication {config.replication_factor}"
                detail += f", {settings}" if settings else ""
                changes.append(Change(name, topic.name, "create", detail, topic))
                continue
            if config.partitions > current.partitions:
                detail = f"{current.partitions} -> {config.partitions} partitions"
                changes.append(Change(name, topic.name, "repartition", detail, topic))
            elif config.partitions < current.partitions:
                detail = (
                    f"has {current.partitions} partitions, {topic.source} wants {config.partitions}: "
                    f"partitions never shrink"
                )
                changes.append(Change(name, topic.name, "refused", detail, topic))
            if config.replication_factor != current.replication_factor:
                detail = (
                    f"replication factor is {current.replication_factor}, {topic.source} wants "
                    f"{config.replication_factor}: it is set at creation only"
                )
                changes.append(Change(name, topic.name, "refused", detail, topic))
            wanted = config.wanted_settings()
            if wanted:
                actual = await admin.describe_config(topic.name)
                different = {k: v for k, v in sorted(wanted.items()) if actual.get(k) != v}
                if different:
                    detail = ", ".join(f"{k}: {actual.get(k)} -> {v}" for k, v in different.items())
                    changes.append(Change(name, topic.name, "reconfigure", detail, topic))
    return changes


async def migrate(changes: Sequence[Change], admins: AdminRegistry) -> list[Change]:
    """Apply a plan; returns what was applied (refused changes are not)."""
    applied = []
    for change in changes:
        admin = admins.cluster(change.cluster)
        config = change.declared.config
        if change.action == "create":
            spec = TopicSpec(
                change.topic, config.partitions, config.replication_factor, config.wanted_settings()
            )
            await admin.create_topics([spec])
        elif change.action == "repartition":
            await admin.add_partitions(change.topic, config.partitions)
        elif change.action == "reconfigure":
            await admin.alter_config(change.topic, config.wanted_settings())
        else:
            continue
        applied.append(change)
    return applied
