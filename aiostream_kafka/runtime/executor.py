"""Running one partition's polled records through its route, batch by batch.

The records come in chunks of ``max_messages``, in offset order; each goes to the handler
as one ``Messages`` batch. What the handler finished is committed before the partition's
next chunk starts, so a crash repeats at most one batch per partition. A failure goes to
the ``FailureHandler`` and ends this partition's share of the poll: it is rewound and
paused, and comes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from aiokafka import ConsumerRecord, TopicPartition

from aiostream_kafka.consumer import Consumer
from aiostream_kafka.errors import ProcessingTimeoutError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.messages import Message, Messages, batch_of
from aiostream_kafka.processing.policy import FailurePolicy, is_fatal
from aiostream_kafka.routing.topology import RoutedTopic
from aiostream_kafka.runtime.cancellation import being_cancelled, not_cancelled_by_us
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.exactly_once import TransactionalBatches
from aiostream_kafka.runtime.failures import FailureHandler
from aiostream_kafka.runtime.flow import Flow
from aiostream_kafka.runtime.in_flight import InFlight
from aiostream_kafka.runtime.offsets import Offsets
from aiostream_kafka.runtime.pauses import Pauses
from aiostream_kafka.runtime.statistics import Statistics
from aiostream_kafka.runtime.transactions import PartitionTransactions, Transaction
from aiostream_kafka.runtime.virtual_partitions import Splitter, VirtualExecutor

Invoke = Callable[[Messages[Any]], Awaitable[None]]

_NO_LIMIT = contextlib.nullcontext()


@dataclass
class RunningRoute:
    """A topic as a listener runs it: its handler and its failure bookkeeping."""

    topic: RoutedTopic
    invoke: Invoke
    policy: FailurePolicy
    instance: Consumer | None
    #: How its batches split into virtual partitions (None: they do not).
    virtual: Splitter | None = None
    flow: Flow | None = None  # what it holds back from the handler (None: nothing)

    def forget(self, partition: int) -> None:
        """``partition`` was revoked: whoever gets it next counts its failures afresh."""
        self.policy.forget(partition)
        if self.virtual is not None:
            self.virtual.forget(partition)

    @property
    def handler_name(self) -> str:
        return self.topic.route.handler_name

    @property
    def timeout(self) -> float | None:
        return self.topic.route.processing_timeout

    @property
    def exactly_once(self) -> bool:
        return self.topic.route.exactly_once


class Executor:
    def __init__(
        self,
        *,
        max_messages: int,
        monitor: Monitor,
        tags: dict[str, str],
        server: str,
        in_flight: InFlight,
        offsets: Offsets,
        pauses: Pauses,
        failures: FailureHandler,
        statistics: Statistics,
        transactions: PartitionTransactions,
        clock: Clock,
    ) -> None:
        self._size = max_messages
        self._transactions = transactions
        self._monitor = monitor
        self._tags = tags
        self._server = server
        self._in_flight = in_flight
        self._offsets = offsets
        self._pauses = pauses
        self._failures = failures
        self._statistics = statistics
        self._where: dict[TopicPartition, dict[str, Any]] = {}  # each partition's event tags
        self._transactional = TransactionalBatches(
            self,
            max_messages=max_messages,
            clock=clock,
            in_flight=in_flight,
            offsets=offsets,
            pauses=pauses,
            failures=failures,
            transactions=transactions,
        )
        self._virtual = VirtualExecutor(
            monitor=monitor,
            server=server,
            in_flight=in_flight,
            offsets=offsets,
            pauses=pauses,
            failures=failures,
            statistics=statistics,
        )

    async def run(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> None:
        """Hand ``tp``'s ``records`` to its handler in batches (under ``limiter``, if given)."""
        if route.exactly_once and route.flow is None:  # several batches to a transaction
            await self._transactional.run(consumer, tp, route, records, limiter)
            return
        size = self._size
        revoked = self._in_flight.revoked
        for start in range(0, len(records), size):
            if tp in revoked:
                return  # leaving this partition: the rest is for its next owner
            chunk = records[start : start + size]
            dead = self._offsets.dead(tp)
            live = [r for r in chunk if r.offset not in dead] if dead else chunk
            if not live:
                if route.exactly_once:  # its dead letters, and the offset past them, in a transaction
                    if not await self.skip_in_transaction(consumer, tp, route, chunk):
                        return
                else:
                    self._offsets.advance(tp, chunk[-1].offset + 1)
                continue
            if route.flow is not None:
                if not await self._held_back(consumer, tp, route, route.flow, chunk, live, limiter):
                    return  # it holds the partition back, or as below
            elif not await self._batch(consumer, tp, route, chunk, live, limiter):
                return  # it failed, or the handler asked for a pause or seek: the poll ends here
            if start + size < len(records):
                await self._offsets.commit(consumer, only=[tp])

    async def skip_in_transaction(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        chunk: Sequence[ConsumerRecord[bytes, bytes]],
    ) -> bool:
        """Commit past a chunk of dead-lettered records (with their dead letters) in a
        transaction; if that fails, the partition waits and comes again from the chunk. (Also
        ``TransactionalBatches``', between its transactions.)"""
        try:
            await self._transactions.dead_letter(consumer, tp, None, chunk[-1].offset + 1, self._at(tp))
        except Exception as error:
            if is_fatal(error):
                raise
            self._monitor.emit("error.occurred", **self._at(tp), type="dlq.dispatch", error=error)
            self._pauses.pause(consumer, tp, seek_to=chunk[0].offset, delay=route.policy.backoff.delay(1))
            return False
        return True

    async def _held_back(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        flow: Flow,
        chunk: Sequence[ConsumerRecord[bytes, bytes]],
        live: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> bool:
        """A batch through the route's flow (runtime/flow.py), then its handler: what it skipped
        is done as the handled records are; from where it stopped, the partition is sought back
        and paused. True if the partition goes on with its next batch."""
        admission = flow.admit(tp, live)
        where = self._at(tp)
        flow.report(self._monitor, where, live[0].offset, admission)
        stopped = admission.hold is not None or admission.failed is not None
        covered = [r for r in chunk if r.offset < admission.end] if stopped else chunk
        if admission.handed:
            made = admission.messages
            if not await self._batch(consumer, tp, route, covered, admission.handed, limiter, made):
                return False
        elif covered:  # all skipped: done, as dead letters are
            if route.exactly_once:
                if not await self.skip_in_transaction(consumer, tp, route, covered):
                    return False
            else:
                self._offsets.advance(tp, covered[-1].offset + 1)
                self._offsets.positions[tp] = covered[-1].offset + 1
        if admission.failed is not None:
            await self._filter_failed(consumer, tp, route, *admission.failed)
            return False
        hold = admission.hold
        if hold is None:
            return True
        self._pauses.pause(consumer, tp, seek_to=admission.end, delay=hold.wait)
        flow.report_hold(self._monitor, where, hold, admission.end)
        return False

    async def _filter_failed(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        record: ConsumerRecord[bytes, bytes],
        error: Exception,
    ) -> None:
        """The route's filter failed on ``record``: a failure of that message, as a handler's."""
        failing = batch_of(
            [record],
            topic=tp.topic,
            partition=tp.partition,
            cluster=route.topic.cluster,
            decoder=route.topic.decoder,
            attempt=route.policy.attempt(tp.partition),
        )
        failing.close()
        where = self._at(tp)
        await self._failures.batch_failed(consumer, tp, route.topic, route.policy, failing, error, where)

    def received(
        self,
        tp: TopicPartition,
        route: RunningRoute,
        live: Sequence[ConsumerRecord[bytes, bytes]],
        made: Sequence[Message[Any]] | None = None,
    ) -> Messages[Any]:
        """The batch of ``live`` records (of ``made``, their messages, if made), reported
        received and held (``InFlight``) until released: for this and ``TransactionalBatches``."""
        messages = batch_of(
            live,
            topic=tp.topic,
            partition=tp.partition,
            cluster=route.topic.cluster,
            decoder=route.topic.decoder,
            attempt=route.policy.attempt(tp.partition),
            is_revoked=lambda: tp in self._in_flight.revoked,
            messages=made,
        )
        self._monitor.emit(
            "batch.received",
            **self._at(tp),
            count=len(live),
            first_offset=live[0].offset,
            server=self._server,
            messages=messages,
        )
        self._in_flight.hold(tp, messages)
        return messages

    def processed(
        self,
        tp: TopicPartition,
        live: Sequence[ConsumerRecord[bytes, bytes]],
        position: int,
        attempt: int,
        began: float,
    ) -> None:
        """A batch of ``live`` records done: its handler returned (``_succeeded``), or it
        committed in its transaction (``TransactionalBatches``); ``position``: the offset past
        its chunk."""
        self._offsets.positions[tp] = position
        self._statistics.processed += len(live)
        self._monitor.emit(
            "batch.processed",
            **self._at(tp),
            count=len(live),
            first_offset=live[0].offset,
            last_offset=live[-1].offset,
            attempt=attempt,
            duration=time.perf_counter() - began,
        )

    def at(self, tp: TopicPartition) -> dict[str, Any]:
        return self._at(tp)

    def _at(self, tp: TopicPartition) -> dict[str, Any]:
        """The tags of ``tp``'s events."""
        where = self._where.get(tp)
        if where is None:
            where = self._where[tp] = {**self._tags, "topic": tp.topic, "partition": tp.partition}
        return where

    async def _batch(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        chunk: Sequence[ConsumerRecord[bytes, bytes]],
        live: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
        made: Sequence[Message[Any]] | None = None,
    ) -> bool:
        """One batch through the handler; True if the partition goes on with its next one.
        ``chunk``: the records the batch accounts for, ``live`` those the handler gets (the rest
        were dead-lettered or held back by the route's flow); ``made``: their messages, if made."""
        if route.virtual is not None:
            return await self._virtual.run(consumer, tp, route, chunk, live, limiter, self._at(tp))
        messages = self.received(tp, route, live, made)
        where = self._at(tp)
        began = time.perf_counter()
        transaction: Transaction | None = None
        try:
            if route.exactly_once:
                transaction = await self._transactions.begin(consumer, tp, where, chunk[0].offset)
                if transaction is None:
                    return False  # read from before its committed offset: it is read again from there
            if limiter is None and route.timeout is None:
                await route.invoke(messages)
            else:
                await self.invoke_bounded(route, messages, limiter)
            if transaction is not None:
                await transaction.commit(chunk[-1].offset + 1)
                transaction = None
        except Exception as error:
            if is_fatal(error):
                raise
            if transaction is not None:
                await transaction.abort(error)
                transaction = None
            await self._failures.batch_failed(consumer, tp, route.topic, route.policy, messages, error, where)
            return False
        except asyncio.CancelledError as cancelled:
            if transaction is not None:
                await transaction.abort(cancelled)
                transaction = None
            if being_cancelled():
                raise
            failure = not_cancelled_by_us(route.handler_name, cancelled)
            await self._failures.batch_failed(
                consumer, tp, route.topic, route.policy, messages, failure, where
            )
            return False
        finally:
            if transaction is not None:  # a fatal error: nothing of the batch may commit
                await transaction.abort(RuntimeError("the listener is stopping on a fatal error"))
            messages.close()
            self._in_flight.release(tp)
        self._succeeded(tp, route, chunk, live, messages, began)
        if messages.after_batch is None:
            return True
        resume_at = _resume_at(route, chunk, messages)
        await self._pauses.apply(consumer, tp, messages.after_batch, next_offset=resume_at)
        return False

    def _succeeded(
        self,
        tp: TopicPartition,
        route: RunningRoute,
        chunk: Sequence[ConsumerRecord[bytes, bytes]],
        live: Sequence[ConsumerRecord[bytes, bytes]],
        messages: Messages[Any],
        began: float,
    ) -> None:
        """The handler returned: what it finished (or marked) is done."""
        route.policy.succeeded(tp.partition)
        # The chunk's records that were not handed (dead-lettered, skipped by the flow) are done
        # once what was handed is: all of it, or with manual offsets once the last is marked.
        end = chunk[-1].offset + 1
        progress: int | None = end
        if route.topic.route.manual_offset_management:
            progress = messages.marked_offset
            if progress is not None and progress > live[-1].offset:
                progress = end
        if progress is not None and not route.exactly_once:  # (those committed in their transaction)
            self._offsets.advance(tp, progress)
        self.processed(tp, live, end, messages.attempt, began)

    async def invoke_bounded(
        self, route: RunningRoute, messages: Messages[Any], limiter: anyio.CapacityLimiter | None
    ) -> None:
        """The handler, after its turn under the limiter, within the route's processing_timeout."""
        async with limiter if limiter is not None else _NO_LIMIT:
            with anyio.move_on_after(route.timeout if route.timeout is not None else math.inf) as scope:
                await route.invoke(messages)
            if scope.cancel_called:  # even if the handler swallowed the cancellation and returned
                raise ProcessingTimeoutError(
                    f"{route.handler_name} took longer than processing_timeout={route.timeout}s on "
                    f"{messages.topic}[{messages.partition}] at offset {messages.first_offset}"
                )


def _resume_at(
    route: RunningRoute, chunk: Sequence[ConsumerRecord[bytes, bytes]], messages: Messages[Any]
) -> int:
    """Where a partition the handler paused or sought goes on from: after the batch, or with
    manual offsets at the first message it did not mark (what is not marked is not done)."""
    after: int = chunk[-1].offset + 1
    if not route.topic.route.manual_offset_management:
        return after
    marked = messages.marked_offset
    unmarked = (m.offset for m in messages if marked is None or m.offset >= marked)
    return next(unmarked, after)
