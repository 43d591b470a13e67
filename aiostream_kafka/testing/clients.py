"""Kafka clients on in-memory clusters, behaving as aiokafka's do for the code that uses them.

They implement ``runtime.clients.ConsumerClient`` / ``ReaderClient`` / ``ProducerClient``
(and ``testing/admin.py`` the ``AdminClient``); the Listener, the Producer, the Admin and
the Web UI's board cannot tell them from aiokafka's. One consumer per group is assumed (a
test runs one app), so a consumer is assigned every partition of the topics it subscribes to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalOperation, IllegalStateError, ProducerFenced, UnknownMemberIdError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import OffsetAndTimestamp, RecordMetadata

from aiostream_kafka.config import Cluster
from aiostream_kafka.errors import NotRunningError
from aiostream_kafka.producing.deliveries import Answered
from aiostream_kafka.producing.failures import DEFAULT_MAX_BATCH_SIZE, UNRECOGNIZED_PARTITION
from aiostream_kafka.runtime.clients import (
    AdminClient,
    AppendedRecord,
    ConsumerClient,
    KafkaClients,
    ProducerClient,
    ReaderClient,
    RecordBatch,
)
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.testing.admin import MemoryAdminClient
from aiostream_kafka.testing.memory import MemoryCluster


class MemoryConsumer:
    """Subscribed (the Listener's: a member of its group, assigned every partition of its
    topics) or assigned partitions by hand (the Admin's and the Web UI's: no member of any
    group, committing for the group it names only while that group has no members)."""

    def __init__(
        self,
        cluster: MemoryCluster,
        *,
        group_id: str | None,
        auto_offset_reset: str = "latest",
        client_id: str = "",
        isolation_level: str = "read_uncommitted",
    ) -> None:
        self._cluster = cluster
        self._committed_only = isolation_level == "read_committed"
        self.group_id = group_id
        self.client_id = client_id
        self._reset = auto_offset_reset
        self._topics: list[str] = []
        self._listener: ConsumerRebalanceListener | None = None
        self._member: str | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._wakeup = anyio.Event()
        self._unwatch: Callable[[], None] = lambda: None
        #: True while it waits in ``getmany`` for something to fetch: the harness's "idle".
        self.waiting = False
        self.running = False

    @property
    def cluster(self) -> MemoryCluster:
        return self._cluster

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None:
        self._topics, self._listener = list(topics), listener

    def assign(self, partitions: list[TopicPartition]) -> None:
        if self._topics:
            raise IllegalStateError("Subscription to topics, partitions and pattern are mutually exclusive")
        self._positions = {tp: self._first_position(tp) for tp in partitions}

    def _first_position(self, tp: TopicPartition) -> int:
        committed = None if self.group_id is None else self._cluster.committed.get((self.group_id, tp))
        if committed is not None:
            return committed
        return 0 if self._reset == "earliest" else self._cluster.end_offset(tp)

    async def start(self) -> None:
        for topic in self._topics:
            self._cluster.create_topic(topic)
        if self._topics:
            assert self.group_id is not None, "a subscribed consumer is in a group"
            assigned = {
                TopicPartition(topic, p)
                for topic in self._topics
                for p in range(self._cluster.partitions(topic))
            }
            self._positions = {tp: self._first_position(tp) for tp in assigned}
            self._member = self._cluster.join(self.group_id, self.client_id)
        self._unwatch = self._cluster.watch(lambda: self._wakeup.set())
        self.running = True
        if self._listener is not None:
            await self._listener.on_partitions_assigned(set(self._positions))

    async def stop(self) -> None:
        self.running = False
        self._unwatch()
        self._positions.clear()
        if self._member is not None:
            assert self.group_id is not None
            self._cluster.leave(self.group_id, self._member)
            self._member = None

    def fetchable(self, partitions: Iterable[TopicPartition] = ()) -> bool:
        """Whether ``getmany(*partitions)`` would return records at once (no partitions: any)."""
        wanted = set(partitions) or self._positions.keys()
        return any(
            position < self._end(tp)
            for tp, position in self._positions.items()
            if tp in wanted and tp not in self._paused
        )

    def _end(self, tp: TopicPartition) -> int:
        """How far this consumer may read: the stable end, reading committed records only."""
        return self._cluster.stable_end(tp) if self._committed_only else self._cluster.end_offset(tp)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        with anyio.move_on_after(timeout_ms / 1000):
            while not self.fetchable(partitions):
                self._wakeup = anyio.Event()
                self.waiting = True
                try:
                    await self._wakeup.wait()
                finally:
                    self.waiting = False
        remaining = max_records if max_records is not None else 2**31
        fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in sorted(partitions or self._positions):
            if remaining <= 0:
                break
            if tp in self._paused:
                continue
            position = self._positions[tp]
            records = self._cluster.read(tp, position, min(remaining, max(0, self._end(tp) - position)))
            self._positions[tp] += len(records)
            aborted = self._cluster.aborted
            if self._committed_only and aborted:
                records = [r for r in records if (r.topic, r.partition, r.offset) not in aborted]
            if records:
                fetched[tp] = records
                remaining -= len(records)
        return fetched

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.group_id is None:
            raise IllegalOperation("Requires group_id")
        if self._member is None and self._cluster.members.get(self.group_id):
            raise UnknownMemberIdError(
                f"consumer group {self.group_id!r} on the in-memory cluster {self._cluster.name!r} has "
                f"members: only they commit its offsets"
            )
        for tp, offset in offsets.items():
            self._cluster.committed[(self.group_id, tp)] = offset

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)
        self._wakeup.set()

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._positions[partition] = offset
        self._wakeup.set()

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.seek(tp, 0)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.seek(tp, self._cluster.end_offset(tp))

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 0)  # in memory, nothing is ever deleted

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._end(tp) for tp in partitions}  # reading committed: the last stable offset

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, timestamp in timestamps.items():
            records = self._cluster.read(tp, 0, self._cluster.end_offset(tp))
            first = next((r for r in records if r.timestamp >= timestamp), None)
            found[tp] = None if first is None else OffsetAndTimestamp(first.offset, first.timestamp)
        return found

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._cluster.end_offset(partition)

    async def position(self, partition: TopicPartition) -> int:
        return self._positions[partition]

    async def committed(self, partition: TopicPartition) -> int | None:
        if self.group_id is None:
            return None
        return self._cluster.committed.get((self.group_id, partition))


class MemoryBatch:
    """``create_batch``'s builder: aiokafka's own, so that it fills up exactly as the real one
    does; its records, in order, for ``send_batch`` to append to the in-memory log."""

    def __init__(self, batch_size: int, clock: Clock) -> None:
        self._builder = BatchBuilder(batch_size, 0)
        self._clock = clock
        self.records: list[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int]] = []

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> AppendedRecord | None:
        timestamp = timestamp if timestamp is not None else int(self._clock.now() * 1000)
        appended: AppendedRecord | None = self._builder.append(
            timestamp=timestamp, key=key, value=value, headers=list(headers)
        )
        if appended is not None:
            self.records.append((key, value, headers, timestamp))
        return appended

    def close(self) -> None:
        self._builder.close()

    def record_count(self) -> int:
        return len(self.records)


class MemoryProducer:
    """Appends to the in-memory logs; with a ``transactional_id``, only inside transactions,
    which commit or abort as on Kafka (``MemoryCluster``: what read-committed readers see)."""

    def __init__(
        self,
        cluster: MemoryCluster,
        clock: Clock,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        transactional_id: str | None = None,
    ) -> None:
        self._cluster = cluster
        self._clock = clock
        self._started = False
        self._max_batch_size = max_batch_size
        self._transactional_id = transactional_id
        self._epoch: int | None = None
        self._in_transaction = False
        self._offsets: dict[tuple[str, TopicPartition], int] = {}
        self._answered: Answered | None = None

    def report_sent_to(self, answered: Answered) -> None:
        """As aiokafka's batches report to ``producing.deliveries``: here every send at once."""
        self._answered = answered

    async def start(self) -> None:
        self._started = True
        if self._transactional_id is not None:
            self._epoch = self._cluster.fence(self._transactional_id)

    async def stop(self) -> None:
        self._started = False

    async def flush(self) -> None:
        return None

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        if not self._started:
            raise NotRunningError(f"the in-memory producer for cluster {self._cluster.name!r} is stopped")
        self._known(topic, partition)
        metadata = self._cluster.append(
            topic,
            value,
            key=key,
            headers=headers,
            partition=partition,
            timestamp_ms=timestamp_ms if timestamp_ms is not None else int(self._clock.now() * 1000),
            produced=True,
            transaction=self._sending_in(),
        )
        if self._answered is not None:
            self._answered(metadata.topic_partition, 1, None)
        delivered: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivered.set_result(metadata)
        return delivered

    def create_batch(self) -> RecordBatch:
        return MemoryBatch(self._max_batch_size, self._clock)

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[RecordMetadata | None]:
        """Append the batch's records to ``partition``: the broker's answer is its base offset,
        and -1 for the timestamp, as a topic with CreateTime answers."""
        if not self._started:
            raise NotRunningError(f"the in-memory producer for cluster {self._cluster.name!r} is stopped")
        assert isinstance(batch, MemoryBatch), "a batch of this producer's create_batch"
        self._known(topic, partition)
        transaction = self._sending_in()
        offsets = [
            self._cluster.append(
                topic,
                value,
                key=key,
                headers=headers,
                partition=partition,
                timestamp_ms=timestamp,
                produced=True,
                transaction=transaction,
            ).offset
            for key, value, headers, timestamp in batch.records
        ]
        tp = TopicPartition(topic, partition)
        if self._answered is not None and offsets:
            self._answered(tp, len(offsets), None)
        base = offsets[0] if offsets else self._cluster.end_offset(tp)
        delivered: asyncio.Future[RecordMetadata | None] = asyncio.get_running_loop().create_future()
        delivered.set_result(RecordMetadata(topic, partition, tp, base, -1, 0, None))
        return delivered

    def _known(self, topic: str, partition: int | None) -> None:
        """Refuse a partition the topic lacks as aiokafka's ``send`` does (the Producer names it)."""
        if partition is not None and not 0 <= partition < self._cluster.partitions(topic):
            raise AssertionError(UNRECOGNIZED_PARTITION)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self._cluster.partitions(topic)))

    # --- transactions, as aiokafka's producer refuses and runs them ----------------------

    def _sending_in(self) -> str | None:
        """The transaction a send belongs to (None: not transactional); refused outside one."""
        if self._transactional_id is None:
            return None
        self._not_fenced()
        if not self._in_transaction:
            raise IllegalOperation("Can't send messages while not in transaction")
        return self._transactional_id

    def _not_fenced(self) -> str:
        transactional_id = self._transactional_id
        if transactional_id is None:
            raise IllegalOperation("You need to configure transaction_id to use transactions")
        if self._cluster.epochs.get(transactional_id) != self._epoch:
            raise ProducerFenced()
        return transactional_id

    async def begin_transaction(self) -> None:
        self._not_fenced()
        if self._in_transaction:
            raise IllegalOperation("a transaction is already open")
        self._in_transaction = True

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        self._not_fenced()
        if not self._in_transaction:
            raise IllegalOperation("Not in the middle of a transaction")
        self._offsets.update({(group_id, tp): offset for tp, offset in offsets.items()})

    async def commit_transaction(self) -> None:
        await self._end(commit=True)

    async def abort_transaction(self) -> None:
        await self._end(commit=False)

    async def _end(self, *, commit: bool) -> None:
        transactional_id = self._not_fenced()
        offsets, self._offsets, self._in_transaction = self._offsets, {}, False
        self._cluster.end_transaction(transactional_id, commit=commit, offsets=offsets)


class MemoryClients(KafkaClients):
    """Clients of the in-memory clusters, by the app's cluster names."""

    def __init__(self, clusters: Mapping[str, MemoryCluster], clock: Clock) -> None:
        self.clusters = clusters
        self._clock = clock
        #: The subscribed consumers made, for the harness to tell when the app is idle.
        self.consumers: list[MemoryConsumer] = []

    def consumer(self, cluster: Cluster, **settings: Any) -> ConsumerClient:
        consumer = MemoryConsumer(
            self.clusters[cluster.name],
            group_id=settings["group_id"],
            auto_offset_reset=settings.get("auto_offset_reset", "latest"),
            client_id=settings.get("client_id", ""),
            isolation_level=settings.get("isolation_level", "read_uncommitted"),
        )
        self.consumers.append(consumer)
        return consumer

    def producer(self, cluster: Cluster, **settings: Any) -> ProducerClient:
        batch_size = int(settings.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE))
        return MemoryProducer(
            self.clusters[cluster.name],
            self._clock,
            max_batch_size=batch_size,
            transactional_id=settings.get("transactional_id"),
        )

    def reader(self, cluster: Cluster, **settings: Any) -> ReaderClient:
        """Not among ``consumers``: what it reads, when, is its user's business, not the app's."""
        return MemoryConsumer(
            self.clusters[cluster.name],
            group_id=settings.get("group_id"),
            auto_offset_reset=settings.get("auto_offset_reset", "latest"),
            client_id=settings.get("client_id", ""),
            isolation_level=settings.get("isolation_level", "read_uncommitted"),
        )

    def admin(self, cluster: Cluster, **settings: Any) -> AdminClient:
        return MemoryAdminClient(self.clusters[cluster.name], self.consumers)
