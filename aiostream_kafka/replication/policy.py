"""How MirrorMaker 2 names what it writes on the target: its replication policies' rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PolicyName = Literal["default", "identity"]
POLICIES: tuple[PolicyName, ...] = ("default", "identity")


@dataclass(frozen=True)
class ReplicationPolicy:
    """MirrorMaker's ``DefaultReplicationPolicy`` (``default``: ``<source>.<topic>``) or
    ``IdentityReplicationPolicy`` (``identity``: the topic's own name), with the separator of
    ``replication.policy.separator``. Internal topics always use ``.``, as MirrorMaker does by
    default (``replication.policy.internal.topic.separator.enabled`` left on is the same)."""

    name: PolicyName = "default"
    separator: str = "."

    def remote_topic(self, source_alias: str, topic: str) -> str:
        """The name ``topic`` of the source cluster has on the replica."""
        if self.name == "identity":
            return topic
        return f"{source_alias}{self.separator}{topic}"

    def upstream_topic(self, source_alias: str, remote: str) -> str:
        """The source's name of a replica topic (the inverse of ``remote_topic``)."""
        prefix = self.remote_topic(source_alias, "")
        return remote[len(prefix) :] if remote.startswith(prefix) else remote

    @staticmethod
    def checkpoints_topic(source_alias: str) -> str:
        """On the replica: the checkpoints of the source's consumer groups."""
        return f"{source_alias}.checkpoints.internal"

    @staticmethod
    def heartbeats_topic(source_alias: str | None = None) -> str:
        """``heartbeats``: MirrorMaker's own on a cluster; ``<source>.heartbeats``: the source's,
        replicated."""
        return "heartbeats" if source_alias is None else f"{source_alias}.heartbeats"

    @staticmethod
    def offset_syncs_topic(other_alias: str) -> str:
        """Which upstream offset became which downstream one: named after the cluster it is not
        on (the target's alias on the source, MirrorMaker's default; the source's on the target)."""
        return f"mm2-offset-syncs.{other_alias}.internal"
