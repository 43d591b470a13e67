"""A listener's side of a rebalance: let revoked partitions go cleanly, take new ones.

Revoked partitions' batches get ``revoke_timeout`` to finish (then they are cancelled),
what is done is committed, and only then are the Consumers told: the partitions' next
owner starts where this listener stopped. Other partitions keep going meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.executor import RunningRoute
from aiostream_kafka.runtime.failures import FailureHandler
from aiostream_kafka.runtime.hooks import call_hook
from aiostream_kafka.runtime.in_flight import InFlight
from aiostream_kafka.runtime.offsets import Offsets
from aiostream_kafka.runtime.pauses import Pauses
from aiostream_kafka.runtime.statistics import names
from aiostream_kafka.runtime.transactions import PartitionTransactions


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        consumer: ConsumerClient,
        routes: Mapping[str, RunningRoute],
        *,
        monitor: Monitor,
        tags: dict[str, str],
        in_flight: InFlight,
        offsets: Offsets,
        pauses: Pauses,
        failures: FailureHandler,
        transactions: PartitionTransactions,
        revoke_timeout: float,
    ) -> None:
        self._transactions = transactions
        self._consumer = consumer
        self._routes = routes
        self._monitor = monitor
        self._tags = tags
        self._in_flight = in_flight
        self._offsets = offsets
        self._pauses = pauses
        self._failures = failures
        self._revoke_timeout = revoke_timeout

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish (within ``revoke_timeout``) or abandon the revoked partitions' batches, commit
        what is done, then tell the consumers."""
        if not revoked:
            return
        self._in_flight.revoked |= revoked
        abandoned = await self._in_flight.finish(revoked, within=self._revoke_timeout)
        await self._offsets.commit(self._consumer, only=revoked)
        await self._transactions.revoked(revoked)
        self._offsets.forget(revoked)
        for tp in revoked:
            self._routes[tp.topic].forget(tp.partition)
            self._pauses.forget(tp)
            self._failures.forget(tp)
        for name, route in self._routes.items():
            partitions = sorted(tp.partition for tp in revoked if tp.topic == name)
            if partitions and route.instance is not None:
                await call_hook(route.instance.revoked(partitions), self._monitor, self._tags)
        self._monitor.emit("partitions.revoked", **self._tags, partitions=names(revoked), abandoned=abandoned)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take the partitions, moving past what this listener processed but could not commit."""
        self._in_flight.revoked -= assigned
        resumed = await self._offsets.resume(self._consumer, assigned)
        await self._transactions.assigned(self._consumer, assigned)
        self._monitor.emit(
            "partitions.assigned",
            **self._tags,
            partitions=names(assigned),
            resumed_after_failed_commit=resumed,
        )
