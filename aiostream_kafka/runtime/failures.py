"""What a listener does when a batch fails, or a partition cannot be read.

A failing batch rewinds and pauses only its own partition and is tried again after the
route's backoff; with a dead-letter queue, the message it keeps failing on is sent there
(as it arrived) and the partition moves on. A partition the consumer cannot read (a
missing codec, a corrupt or oversized record, no permission) is held back alone with
backoff, while what the failed poll read of the others goes on to their handlers.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from aiostream_kafka.errors import DecodeError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.messages import Message, Messages
from aiostream_kafka.processing.dead_letter import DeadLetterQueue, dead_letter_headers
from aiostream_kafka.processing.policy import Decision, FailurePolicy, is_fatal
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.producing.registry import ProducerRegistry
from aiostream_kafka.routing.topology import RoutedTopic
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.fetch_failures import FetchFailure, Records, remedy
from aiostream_kafka.runtime.offsets import Offsets
from aiostream_kafka.runtime.pauses import Pauses
from aiostream_kafka.runtime.transactions import DeadLetter, PartitionTransactions


def report_failed(
    monitor: Monitor, where: dict[str, Any], offset: int, decision: Decision, error: Exception
) -> None:
    """``batch.failed`` for a batch failed at ``offset``: here and for a virtual partition."""
    transient = decision.action == "wait"
    monitor.emit(
        "batch.failed", **where, offset=offset, attempt=decision.attempts, transient=transient, error=error
    )


def report_retry(monitor: Monitor, where: dict[str, Any], offset: int, decision: Decision) -> None:
    """``retry.scheduled`` from ``offset``; a transient failure's wait is not a new attempt."""
    transient = decision.action == "wait"
    attempt = decision.attempts if transient else decision.attempts + 1
    monitor.emit(
        "retry.scheduled", **where, offset=offset, attempt=attempt, delay=decision.delay, transient=transient
    )


class FailureHandler:
    def __init__(
        self,
        *,
        group_id: str,
        cluster: str,
        monitor: Monitor,
        tags: dict[str, str],
        offsets: Offsets,
        pauses: Pauses,
        producers: ProducerRegistry,
        transactions: PartitionTransactions,
    ) -> None:
        self._transactions = transactions
        self._group_id = group_id
        self._cluster = cluster
        self._monitor = monitor
        self._tags = tags
        self._offsets = offsets
        self._pauses = pauses
        self._producers = producers
        self._unreadable: dict[TopicPartition, int] = {}  # failed fetches in a row, per partition

    def forget(self, tp: TopicPartition) -> None:
        self._unreadable.pop(tp, None)

    # --- a batch failed ------------------------------------------------------------------

    async def batch_failed(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        topic: RoutedTopic,
        policy: FailurePolicy,
        messages: Messages[Any],
        error: Exception,
        where: dict[str, Any],
        *,
        rewind_to: int | None = None,
    ) -> None:
        """Keep what the handler marked, then retry later or give the culprit up, per the route.

        An exactly-once batch's transaction was aborted: nothing of it counts, marks included,
        the partition comes again from ``rewind_to`` (the transaction's first offset: its
        earlier batches were in it too), and a message given up goes to the dead-letter queue
        with the offset past it in one transaction."""
        exactly_once = topic.route.exactly_once
        marked = None if exactly_once else messages.marked_offset
        if marked is not None:
            self._offsets.advance(tp, marked)
        first_unprocessed = next((m.offset for m in messages if marked is None or m.offset >= marked), None)
        if first_unprocessed is None:  # it raised after marking the whole batch: nothing to redo
            self._monitor.emit("error.occurred", **where, type="handler.after_marking_all", error=error)
            consumer.seek(tp, messages.last_offset + 1)
            return
        decision = policy.failed(
            tp.partition, first_unprocessed, error, poison_offset=_poison(error, messages)
        )
        resume = first_unprocessed if rewind_to is None else rewind_to
        report_failed(self._monitor, where, first_unprocessed, decision, error)
        if decision.action in ("retry", "wait"):
            self._pauses.pause(consumer, tp, seek_to=resume, delay=decision.delay)
            report_retry(self._monitor, where, resume, decision)
            return
        culprit = messages.as_received(decision.offset)
        queue = topic.route.dead_letter_queue
        assert queue is not None
        if exactly_once:
            await self._give_up_in_transaction(
                consumer, tp, topic, policy, culprit, error, decision, resume, where
            )
            return
        if not await self.give_up(topic, culprit, error, decision, where):
            delay = policy.backoff.delay(decision.attempts)
            self._pauses.pause(consumer, tp, seek_to=first_unprocessed, delay=delay)
            return
        if culprit.offset == first_unprocessed:  # resume right after it
            self._offsets.advance(tp, culprit.offset + 1)
            consumer.seek(tp, culprit.offset + 1)
        else:  # a poison message after unmarked work: that work comes again, without the culprit
            self._offsets.dead_lettered(tp, culprit.offset)
            consumer.seek(tp, first_unprocessed)

    async def give_up(
        self,
        topic: RoutedTopic,
        culprit: Message[Any],
        error: Exception,
        decision: Decision,
        where: dict[str, Any],
    ) -> bool:
        """Send ``culprit`` to the route's dead-letter queue (unless it skips) and report it;
        False if the queue did not take it (reported; the caller waits and tries again)."""
        queue = topic.route.dead_letter_queue
        assert queue is not None
        if decision.action == "dispatch":
            try:
                await self._dead_letter(topic, queue, culprit, error, decision.attempts)
            except Exception as dispatch_error:
                if is_fatal(dispatch_error):
                    raise
                self._monitor.emit("error.occurred", **where, type="dlq.dispatch", error=dispatch_error)
                return False
        self._dispatched(topic, queue, culprit, decision, error, where)
        return True

    async def _give_up_in_transaction(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        topic: RoutedTopic,
        policy: FailurePolicy,
        culprit: Message[Any],
        error: Exception,
        decision: Decision,
        resume: int,
        where: dict[str, Any],
    ) -> None:
        """An exactly-once route gives ``culprit`` up: its dead-letter record and the offset past
        it commit in one transaction; a culprit after work that comes again (from ``resume``)
        is written in the transaction of that work's batch."""
        queue = topic.route.dead_letter_queue
        assert queue is not None
        letter = (
            DeadLetter(queue.topic, culprit, error, decision.attempts)
            if decision.action == "dispatch" and queue.topic is not None
            else None
        )
        if culprit.offset != resume:
            if letter is not None:
                self._transactions.defer_dead_letter(tp, letter)
            self._offsets.dead_lettered(tp, culprit.offset)
            consumer.seek(tp, resume)
        else:
            try:
                await self._transactions.dead_letter(consumer, tp, letter, culprit.offset + 1, where)
            except Exception as dispatch_error:
                self._dispatch_failed(consumer, tp, policy, decision, resume, dispatch_error, where)
                return
            consumer.seek(tp, culprit.offset + 1)
        self._dispatched(topic, queue, culprit, decision, error, where)

    def _dispatch_failed(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        policy: FailurePolicy,
        decision: Decision,
        first_unprocessed: int,
        dispatch_error: Exception,
        where: dict[str, Any],
    ) -> None:
        """The dead-letter queue did not take the message: the partition waits, then the batch
        comes again (a fatal error ends the listener)."""
        if is_fatal(dispatch_error):
            raise dispatch_error
        self._monitor.emit("error.occurred", **where, type="dlq.dispatch", error=dispatch_error)
        delay = policy.backoff.delay(decision.attempts)
        self._pauses.pause(consumer, tp, seek_to=first_unprocessed, delay=delay)

    def _dispatched(
        self,
        topic: RoutedTopic,
        queue: DeadLetterQueue,
        culprit: Message[Any],
        decision: Decision,
        error: Exception,
        where: dict[str, Any],
    ) -> None:
        self._monitor.emit(
            "dlq.dispatched",
            **where,
            offset=culprit.offset,
            dlq_topic=queue.topic,
            dlq_cluster=topic.dead_letter_cluster if queue.topic else None,
            attempts=decision.attempts,
            error=error,
        )

    async def _dead_letter(
        self,
        topic: RoutedTopic,
        queue: DeadLetterQueue,
        message: Message[object],
        error: BaseException,
        attempts: int,
    ) -> RecordMetadata:
        """Send ``message`` as it arrived (key and value bytes untouched) to the DLQ topic."""
        assert queue.topic is not None
        producer: Producer = self._producers[topic.dead_letter_cluster]
        return await producer.produce(
            queue.topic,
            message.value,
            key=message.key,
            headers=dead_letter_headers(message, error=error, attempts=attempts, group_id=self._group_id),
        )

    # --- a partition cannot be read ------------------------------------------------------

    async def fetch_failed(
        self, consumer: ConsumerClient, failure: FetchFailure, backoff: Backoff
    ) -> Records:
        """Hold back the one partition the consumer could not read, report it, and try it again
        later; returns what the failed poll had read of the others."""
        tp, error = failure.partition, failure.error
        offset = failure.offset
        if offset is None:
            try:
                offset = await consumer.position(tp)
            except KafkaError:
                offset = None
        attempt = self._unreadable[tp] = self._unreadable.get(tp, 0) + 1
        delay = backoff.delay(attempt)
        self._pauses.pause(consumer, tp, seek_to=offset, delay=delay)
        self._monitor.emit(
            "fetch.failed",
            **self._tags,
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            attempt=attempt,
            retry_in=round(delay, 3),
            remedy=remedy(error, self._cluster),
            error=error,
        )
        return failure.salvaged

    def fetched(self, records: Records) -> None:
        """A poll returned records: report the partitions that are readable again."""
        if not self._unreadable:
            return
        for tp in records.keys() & self._unreadable.keys():
            attempts = self._unreadable.pop(tp)
            self._monitor.emit(
                "fetch.recovered", **self._tags, topic=tp.topic, partition=tp.partition, attempts=attempts
            )


def _poison(error: Exception, messages: Messages[Any]) -> int | None:
    """The offset of the message that cannot be decoded, if that is what failed in this batch."""
    if (
        isinstance(error, DecodeError)
        and (error.topic, error.partition) == (messages.topic, messages.partition)
        and any(m.offset == error.offset for m in messages)
    ):
        return error.offset
    return None
