"""An exactly-once partition's batches, several to a transaction.

A transaction's fixed cost (adding its partitions and its offsets, committing, and the
broker's markers before the producer's next one may begin) is paid per transaction, not
per batch: so the transaction a partition's first batch opens stays open for the batches
after it, and commits with the offset past the last one when this poll's records of the
partition end, the handler pauses or seeks, the partition is revoked, the listener is
stopping, it covers ``TRANSACTION_BATCHES`` batches, or it has been open for
``TRANSACTION_SPAN``. A failure aborts it, and every batch it covered comes again:
``FailureHandler.batch_failed`` rewinds the partition to the transaction's first offset.
Until it commits, nothing of it is done: its batches are reported processed, and their
attempts counted as succeeded, only then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from aiokafka import ConsumerRecord, TopicPartition

from aiostream_kafka.messages import Messages
from aiostream_kafka.processing.policy import is_fatal
from aiostream_kafka.runtime.cancellation import being_cancelled, not_cancelled_by_us
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.failures import FailureHandler
from aiostream_kafka.runtime.in_flight import InFlight
from aiostream_kafka.runtime.offsets import Offsets
from aiostream_kafka.runtime.pauses import Pauses
from aiostream_kafka.runtime.transactions import PartitionTransactions, Transaction

if TYPE_CHECKING:
    from aiostream_kafka.runtime.executor import Executor, RunningRoute

#: How long a partition's transaction takes more of its batches (seconds): past it, the
#: transaction commits after the batch in hand, and the next batch opens another. Far below
#: the producer's transaction timeout (60 s), and a bound on what a failure repeats; a
#: batch that takes this long has a transaction to itself.
TRANSACTION_SPAN = 1.0
#: How many batches a transaction covers at most; also how many of a partition's batches an
#: exactly-once poll takes (``Listener._poll_spread``), unless the route's max_poll_records
#: says otherwise. Past a few, a transaction's fixed cost is small; more would only make a
#: poll longer to decode at once and a failure longer to repeat.
TRANSACTION_BATCHES = 16


@dataclass
class _Covered:
    """A batch whose handler returned inside the open transaction: done once it commits."""

    live: Sequence[ConsumerRecord[bytes, bytes]]
    position: int  # the offset past its chunk
    attempt: int
    began: float


class _Span:
    """A partition's open transaction and the batches it covers."""

    def __init__(self) -> None:
        self.transaction: Transaction | None = None
        self.first_offset = 0  # where its batches come again from if it aborts
        self.next_offset = 0  # past its last batch: what it commits
        self.opened = 0.0
        self.covered: list[_Covered] = []
        self.last: Messages[Any] | None = None  # its last batch, blamed for a failed commit

    def open(self, transaction: Transaction, first_offset: int, now: float) -> None:
        self.transaction = transaction
        self.first_offset = self.next_offset = first_offset
        self.opened = now

    def close(self) -> list[_Covered]:
        """Forget the transaction (committed or aborted); returns the batches it covered."""
        covered, self.covered, self.transaction, self.last = self.covered, [], None, None
        return covered

    async def abort(self, error: BaseException) -> None:
        if self.transaction is not None:
            transaction = self.transaction
            self.close()
            await transaction.abort(error)


class TransactionalBatches:
    """The exactly-once side of an ``Executor`` (whose batch reports it shares)."""

    def __init__(
        self,
        executor: Executor,
        *,
        max_messages: int,
        clock: Clock,
        in_flight: InFlight,
        offsets: Offsets,
        pauses: Pauses,
        failures: FailureHandler,
        transactions: PartitionTransactions,
    ) -> None:
        self._executor = executor
        self._size = max_messages
        self._clock = clock  # the span's (the harness's runs on virtual time)
        self._in_flight = in_flight
        self._offsets = offsets
        self._pauses = pauses
        self._failures = failures
        self._transactions = transactions

    async def run(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> None:
        """Hand ``tp``'s ``records`` to its handler in batches, in as few transactions as the
        rules above allow."""
        size, revoked, offsets = self._size, self._in_flight.revoked, self._offsets
        span = _Span()
        try:
            for start in range(0, len(records), size):
                if tp in revoked:
                    break  # leaving this partition: what is done commits, the rest is for its next owner
                chunk = records[start : start + size]
                dead = offsets.dead(tp)
                live = [r for r in chunk if r.offset not in dead] if dead else chunk
                if not live:  # dead-lettered: the commit moves past them
                    if span.transaction is not None:
                        span.next_offset = chunk[-1].offset + 1
                    elif not await self._executor.skip_in_transaction(consumer, tp, route, chunk):
                        return
                    continue
                messages = await self._batch(consumer, tp, route, span, chunk, live, limiter)
                if messages is None:
                    return  # it failed (its transaction aborted), or is read again from its committed offset
                after_batch = messages.after_batch
                stopping = self._in_flight.stopping
                if (
                    after_batch is not None
                    or stopping
                    or len(span.covered) >= TRANSACTION_BATCHES
                    or self._clock.now() - span.opened >= TRANSACTION_SPAN
                ):
                    if not await self._commit(consumer, tp, route, span):
                        return
                    if after_batch is not None:
                        await self._pauses.apply(consumer, tp, after_batch, next_offset=chunk[-1].offset + 1)
                        return
                    if stopping:
                        return  # the rest is not committed: read again by whoever reads on
            if span.transaction is not None:
                await self._commit(consumer, tp, route, span)
        finally:
            if span.transaction is not None:  # cancelled or a fatal error: nothing of it may commit
                await span.abort(RuntimeError("the listener is stopping"))

    async def _batch(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        span: _Span,
        chunk: Sequence[ConsumerRecord[bytes, bytes]],
        live: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> Messages[Any] | None:
        """One batch through the handler inside ``span``'s transaction (opened for it if none
        is); its messages if the partition goes on, None if it failed or is read again."""
        executor = self._executor
        messages = executor.received(tp, route, live)
        where = executor.at(tp)
        began = time.perf_counter()
        try:
            if span.transaction is None:
                transaction = await self._transactions.begin(consumer, tp, where, chunk[0].offset)
                if transaction is None:
                    return None  # read from before its committed offset: it is read again from there
                span.open(transaction, chunk[0].offset, self._clock.now())
            if limiter is None and route.timeout is None:
                await route.invoke(messages)
            else:
                await executor.invoke_bounded(route, messages, limiter)
        except Exception as error:
            if is_fatal(error):
                raise  # (run aborts the transaction)
            await self._failed(consumer, tp, route, span, messages, error)
            return None
        except asyncio.CancelledError as cancelled:
            if being_cancelled():
                raise  # (run aborts the transaction)
            await self._failed(
                consumer, tp, route, span, messages, not_cancelled_by_us(route.handler_name, cancelled)
            )
            return None
        finally:
            messages.close()
            self._in_flight.release(tp)
        span.covered.append(_Covered(live, chunk[-1].offset + 1, messages.attempt, began))
        span.next_offset = chunk[-1].offset + 1
        span.last = messages
        return messages

    async def _commit(
        self, consumer: ConsumerClient, tp: TopicPartition, route: RunningRoute, span: _Span
    ) -> bool:
        """Commit ``span``'s transaction with the offset past its last batch; True if it did."""
        transaction, last = span.transaction, span.last
        assert transaction is not None
        assert last is not None
        try:
            await transaction.commit(span.next_offset)
        except Exception as error:
            if is_fatal(error):
                raise  # (run aborts the transaction)
            await self._failed(consumer, tp, route, span, last, error)
            return False
        route.policy.succeeded(tp.partition)
        for batch in span.close():
            self._executor.processed(tp, batch.live, batch.position, batch.attempt, batch.began)
        return True

    async def _failed(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        span: _Span,
        messages: Messages[Any],
        error: Exception,
    ) -> None:
        """Abort ``span``'s transaction (if it was open), then the route's failure policy for
        ``messages``, the batch that failed, rewinding to the transaction's first offset."""
        rewind_to = span.first_offset if span.transaction is not None else messages.first_offset
        await span.abort(error)
        where = self._executor.at(tp)
        await self._failures.batch_failed(
            consumer, tp, route.topic, route.policy, messages, error, where, rewind_to=rewind_to
        )
