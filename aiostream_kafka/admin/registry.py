"""One ``Admin`` per cluster of an app, made on first use; the primary's answers by default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType

import anyio

from aiostream_kafka.admin.client import Admin
from aiostream_kafka.admin.types import ClusterInfo, ConsumerGroupInfo, TopicDescription, TopicSpec
from aiostream_kafka.messages import Message
from aiostream_kafka.routing.topology import Topology
from aiostream_kafka.runtime.clients import KafkaClients


class AdminRegistry:
    """``registry.cluster("analytics")`` administers that cluster; the registry's own methods, the primary.

    Nothing connects until a cluster is first used; ``close()`` (or the end of
    ``async with``) closes every connection made, and the registry stays usable after it.
    Every Admin's clients come from ``clients`` (aiokafka's unless given).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        client_id: str,
        timeout: float = 10.0,
        clients: KafkaClients | None = None,
    ) -> None:
        self.topology = topology
        self.client_id = client_id
        self.timeout = timeout
        self.clients = clients or KafkaClients()
        self._admins: dict[str, Admin] = {}

    def cluster(self, name: str) -> Admin:
        """The named cluster's Admin; ``UnknownClusterError`` names the clusters there are."""
        admin = self._admins.get(name)
        if admin is None:
            cluster = self.topology.cluster(name)
            admin = self._admins[name] = Admin(
                cluster, client_id=self.client_id, timeout=self.timeout, clients=self.clients
            )
        return admin

    @property
    def primary(self) -> Admin:
        """The primary cluster's Admin: the one the registry's own methods use."""
        return self.cluster(self.topology.primary.name)

    async def close(self) -> None:
        """Close every cluster's connection at once."""
        async with anyio.create_task_group() as group:
            for admin in self._admins.values():
                group.start_soon(admin.close)

    async def __aenter__(self) -> AdminRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AdminRegistry {', '.join(self.topology.clusters)} (primary {self.topology.primary.name})>"

    # --- the primary's Admin, forwarded ----------------------------------------------------

    async def cluster_info(self) -> ClusterInfo:
        return await self.primary.cluster_info()

    async def list_topics(self, *, internal: bool = False) -> list[str]:
        return await self.primary.list_topics(internal=internal)

    async def describe_topics(self, names: Iterable[str]) -> dict[str, TopicDescription]:
        return await self.primary.describe_topics(names)

    async def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        await self.primary.create_topics(specs)

    async def delete_topics(self, names: Iterable[str]) -> None:
        await self.primary.delete_topics(names)

    async def add_partitions(self, topic: str, total: int) -> None:
        await self.primary.add_partitions(topic, total)

    async def describe_config(self, topic: str) -> dict[str, str]:
        return await self.primary.describe_config(topic)

    async def alter_config(self, topic: str, settings: Mapping[str, str]) -> None:
        await self.primary.alter_config(topic, settings)

    async def consumer_groups(self) -> list[str]:
        return await self.primary.consumer_groups()

    async def consumer_group(self, group_id: str) -> ConsumerGroupInfo:
        return await self.primary.consumer_group(group_id)

    async def reset_offsets(self, group_id: str, topic: str, to: int | str | datetime) -> dict[int, int]:
        return await self.primary.reset_offsets(group_id, topic, to)

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        await self.primary.commit_offsets(group_id, offsets)

    async def offsets(self, topic: str) -> dict[int, tuple[int, int]]:
        return await self.primary.offsets(topic)

    async def read(
        self, topic: str, *, partition: int = 0, start: int | str = "earliest", count: int = 10
    ) -> list[Message[bytes]]:
        return await self.primary.read(topic, partition=partition, start=start, count=count)
