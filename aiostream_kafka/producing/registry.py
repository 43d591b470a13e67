"""One producer per cluster, and which of them is the app's primary producer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import anyio

from aiostream_kafka.errors import UnknownClusterError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.producing.renaming import RenamingProducer
from aiostream_kafka.runtime.clients import KafkaClients
from aiostream_kafka.runtime.clock import Clock

if TYPE_CHECKING:  # (a runtime import would be circular: routing -> processing -> producing)
    from aiostream_kafka.routing.topology import Topology


class ProducerRegistry(Mapping[str, Producer]):
    """``registry["analytics"]`` is that cluster's producer; ``registry.primary`` is ``app.producer``."""

    def __init__(
        self,
        topology: Topology,
        monitor: Monitor,
        *,
        client_id: str,
        format: str = "json",
        clients: KafkaClients | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._monitor = monitor
        self._producers = {
            name: Producer(cluster, monitor, client_id=client_id, format=format, clients=clients, clock=clock)
            if name not in topology.moved
            else RenamingProducer(
                cluster,
                monitor,
                prefix=topology.moved[name].prefix,
                client_id=client_id,
                format=format,
                clients=clients,
                clock=clock,
            )
            for name, cluster in topology.clusters.items()
        }
        self.primary = self._producers[topology.producer_cluster]
        if topology.transactional:  # otherwise no send ever looks for a transaction
            for producer in self._producers.values():
                producer.follows_transactions = True

    def __getitem__(self, name: str) -> Producer:
        try:
            return self._producers[name]
        except KeyError:
            raise UnknownClusterError(
                f"no producer for cluster {name!r}; the app has: {', '.join(self._producers)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._producers)

    def __len__(self) -> int:
        return len(self._producers)

    async def start(self) -> None:
        """Connect every producer at once; one that cannot connect tries again on first use."""

        async def connect(producer: Producer) -> None:
            try:
                await producer.start()
            except Exception as error:
                self._monitor.emit(
                    "error.occurred",
                    cluster=producer.cluster,
                    type="producer.connect",
                    error=error,
                )

        async with anyio.create_task_group() as group:
            for producer in self._producers.values():
                group.start_soon(connect, producer)

    async def stop(self) -> None:
        """Flush and close every producer at once."""
        async with anyio.create_task_group() as group:
            for producer in self._producers.values():
                group.start_soon(producer.stop)
