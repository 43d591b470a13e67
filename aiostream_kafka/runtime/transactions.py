"""Exactly-once routes: a transactional producer per partition, a transaction per batch.

Each partition of an exactly-once topic gets its own transactional producer when it is
assigned, and loses it when it is revoked. Its transactional id is made of the app's name,
the group, the topic and the partition: the same in every process and after a restart, so
whoever owns the partition next fences whoever owned it before (a process killed in the
middle of a batch, or one that lost the partition and does not know it yet): that one's
open transaction is aborted, and it can commit nothing more. (aiokafka commits offsets in a
transaction with the group id only, without KIP-447's check of the member's generation, so
one id per input partition is what keeps a rebalance safe.) Once the new producer is in,
the partition's committed offset is read again: the previous owner's last transaction may
have committed while the assignment was fetching it, and then the partition's first batch,
read from before that, is dropped and the partition read again from there.

A batch runs inside its partition's transaction: the handler's produces on the route's
cluster (whatever producer of that cluster it calls: ``producing.transactions``), its
dead-letter writes and the batch's offsets commit together, or none of them do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
from aiokafka import TopicPartition

from aiostream_kafka.errors import TransactionError
from aiostream_kafka.messages import Message
from aiostream_kafka.processing.dead_letter import dead_letter_headers
from aiostream_kafka.processing.policy import is_fatal
from aiostream_kafka.producing import transactions
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.producing.transactions import InTransaction
from aiostream_kafka.routing.topology import SubscriptionGroup
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.context import RuntimeContext
from aiostream_kafka.runtime.offsets import Offsets

#: What a transactional producer of a partition always is, whatever the cluster says.
TRANSACTIONAL_SETTINGS = {"enable_idempotence": True, "acks": "all"}
#: Where it differs from aiokafka's defaults unless the cluster says otherwise: a transaction
#: that begins right after the previous one committed is told to wait while the broker
#: writes that one's markers (CONCURRENT_TRANSACTIONS), and aiokafka retries after
#: retry_backoff_ms, 100 by default: most of a batch's time. The Java client retries that
#: request after 20 ms.
TRANSACTIONAL_DEFAULTS = {"retry_backoff_ms": 20}


@dataclass(frozen=True)
class DeadLetter:
    """A message for the dead-letter queue, written in its partition's next transaction."""

    topic: str
    message: Message[Any]
    error: BaseException
    attempts: int


class Transaction:
    """One batch's transaction, open on its partition's producer."""

    def __init__(
        self, owner: PartitionTransactions, tp: TopicPartition, producer: Producer, where: dict[str, Any]
    ) -> None:
        self._owner = owner
        self._tp = tp
        self.producer = producer
        self._where = where
        self._began = time.perf_counter()
        self._token: object | None = transactions.enter(
            InTransaction(producer, f"the exactly-once route for topic {tp.topic!r}")
        )

    def _leave(self) -> None:
        if self._token is not None:
            transactions.leave(self._token)
            self._token = None

    async def commit(self, next_offset: int) -> None:
        """Commit the batch's records with ``next_offset`` (its last offset + 1) as the group's."""
        self._leave()
        owner, tp = self._owner, self._tp
        await self.producer.send_offsets_to_transaction({tp: next_offset}, owner.group_id)
        await self.producer.commit_transaction()
        owner.committed(tp, next_offset)
        owner.monitor.emit(
            "transaction.committed",
            **self._where,
            transactional_id=self.producer.transactional_id,
            offset=next_offset,
            duration=time.perf_counter() - self._began,
        )

    async def abort(self, error: BaseException) -> None:
        """Abort (shielded: a cancelled batch aborts too); a failure to abort is reported only:
        the next owner's producer, or this one's next transaction, aborts it anyway."""
        self._leave()
        with anyio.CancelScope(shield=True):
            try:
                await self.producer.abort_transaction()
            except Exception as abort_error:
                self._owner.monitor.emit(
                    "error.occurred", **self._where, type="transaction.abort", error=abort_error
                )
        self._owner.monitor.emit(
            "transaction.aborted", **self._where, transactional_id=self.producer.transactional_id, error=error
        )


class PartitionTransactions:
    """The transactional producers of one listener's exactly-once topics, by partition."""

    def __init__(
        self, group: SubscriptionGroup, context: RuntimeContext, offsets: Offsets, tags: dict[str, str]
    ) -> None:
        self.group_id = group.group_id
        self.monitor = context.monitor
        self._cluster = group.kafka_cluster
        self._cluster_settings = group.kafka_cluster.settings.producer_kwargs()
        self._context = context
        self._offsets = offsets
        self._tags = tags
        self.topics = frozenset(topic.name for topic in group.exactly_once)
        self._producers: dict[TopicPartition, Producer] = {}
        self._prepared: dict[TopicPartition, anyio.Event] = {}  # set once its producer tried to start
        self._ready: set[TopicPartition] = set()  # its producer started, its offset read again
        #: Each partition's committed offset once its producer was in: where its first batch must begin.
        self._start: dict[TopicPartition, int] = {}
        self._dead_letters: dict[TopicPartition, list[DeadLetter]] = {}

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self._context.client_id}.{self.group_id}.{tp.topic}.{tp.partition}"

    # --- assignment ----------------------------------------------------------------------

    async def assigned(self, consumer: ConsumerClient, partitions: Iterable[TopicPartition]) -> None:
        """A producer for each assigned exactly-once partition, started (fencing the previous
        owner's) at once; then the partition resumes from its committed offset."""
        mine = [tp for tp in partitions if tp.topic in self.topics and tp not in self._producers]
        for tp in mine:
            self._producers[tp] = Producer(
                self._cluster,
                self.monitor,
                client_id=self._context.client_id,
                clients=self._context.clients,
                clock=self._context.clock,
                overrides={
                    **{k: v for k, v in TRANSACTIONAL_DEFAULTS.items() if k not in self._cluster_settings},
                    **TRANSACTIONAL_SETTINGS,
                    "transactional_id": self.transactional_id(tp),
                },
            )
            self._prepared[tp] = anyio.Event()
        async with anyio.create_task_group() as group:
            for tp in mine:
                group.start_soon(self._prepare, consumer, tp)

    async def _prepare(self, consumer: ConsumerClient, tp: TopicPartition) -> None:
        try:
            await self._start_producer(consumer, tp)
        except Exception as error:
            if is_fatal(error):
                raise
            # Its first batch tries again, and fails (transiently, if the cluster is away) until
            # it works.
            self.monitor.emit(
                "error.occurred",
                **self._tags,
                topic=tp.topic,
                partition=tp.partition,
                type="transaction.producer",
                error=error,
            )

    async def _start_producer(self, consumer: ConsumerClient, tp: TopicPartition) -> None:
        """Start ``tp``'s producer (fencing the previous owner's, whose open transaction ends),
        then read the committed offset again: where the partition's first batch must begin."""
        try:
            await self._producers[tp].start()
            committed = await consumer.committed(tp)
        finally:
            self._prepared[tp].set()
        if committed is not None:
            self._start[tp] = committed
        self._ready.add(tp)

    async def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Close the producers of partitions this listener no longer owns."""
        gone = [tp for tp in partitions if tp in self._producers]
        producers = [self._producers.pop(tp) for tp in gone]
        for tp in gone:
            self._prepared.pop(tp, None)
            self._ready.discard(tp)
            self._start.pop(tp, None)
            self._dead_letters.pop(tp, None)
        async with anyio.create_task_group() as group:
            for producer in producers:
                group.start_soon(producer.stop)

    async def close(self) -> None:
        await self.revoked(list(self._producers))

    # --- a batch's transaction -----------------------------------------------------------

    async def begin(
        self, consumer: ConsumerClient, tp: TopicPartition, where: dict[str, Any], first_offset: int
    ) -> Transaction | None:
        """Open ``tp``'s transaction for a batch from ``first_offset``; None if the batch is the
        partition's first and does not begin at its committed offset as read once its producer
        was in (read from an offset the previous owner has since committed past): then the
        partition is read again from there."""
        await self._ready_producer(consumer, tp)
        start = self._start.pop(tp, None)
        if start is not None and first_offset != start:
            consumer.seek(tp, start)
            return None
        return await self._open(tp, where, first_offset)

    async def _ready_producer(self, consumer: ConsumerClient, tp: TopicPartition) -> Producer:
        producer = self._producers.get(tp)
        if producer is None:
            raise TransactionError(
                f"partition {tp.partition} of {tp.topic!r} has no transactional producer: it is not "
                f"assigned to this listener",
                cluster=self._cluster.name,
                transactional_id=self.transactional_id(tp),
            )
        await self._prepared[tp].wait()
        if tp not in self._ready:  # its producer did not start on assignment: try again now
            await self._start_producer(consumer, tp)
        return producer

    async def _open(self, tp: TopicPartition, where: dict[str, Any], first_offset: int | None) -> Transaction:
        producer = self._producers[tp]
        await producer.begin_transaction()
        transaction = Transaction(self, tp, producer, where)
        self.monitor.emit(
            "transaction.begun",
            **where,
            transactional_id=producer.transactional_id,
            first_offset=first_offset,
        )
        try:
            for letter in self._dead_letters.get(tp, ()):
                await self._write(producer, letter)
        except BaseException as error:
            await transaction.abort(error)
            raise
        return transaction

    def committed(self, tp: TopicPartition, next_offset: int) -> None:
        """``tp``'s transaction committed: its deferred dead letters are written, its offsets too."""
        self._dead_letters.pop(tp, None)
        self._offsets.committed_in_transaction(tp, next_offset)

    # --- dead letters --------------------------------------------------------------------

    def defer_dead_letter(self, tp: TopicPartition, letter: DeadLetter) -> None:
        """Write ``letter`` in ``tp``'s next transaction (the batch that comes again without it)."""
        self._dead_letters.setdefault(tp, []).append(letter)

    async def dead_letter(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        letter: DeadLetter | None,
        next_offset: int,
        where: dict[str, Any],
    ) -> None:
        """Give a message up in one transaction: its dead-letter record (None: skipped) and the
        offset past it (with the partition's deferred dead letters, if any)."""
        await self._ready_producer(consumer, tp)
        transaction = await self._open(tp, where, None)
        try:
            if letter is not None:
                await self._write(transaction.producer, letter)
            await transaction.commit(next_offset)
        except BaseException as error:
            await transaction.abort(error)
            raise

    async def _write(self, producer: Producer, letter: DeadLetter) -> None:
        message = letter.message
        headers = dead_letter_headers(
            message, error=letter.error, attempts=letter.attempts, group_id=self.group_id
        )
        await producer.produce(letter.topic, message.value, key=message.key, headers=headers)
