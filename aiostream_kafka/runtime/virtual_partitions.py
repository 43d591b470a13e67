"""Running a route's batches split into virtual partitions, handled concurrently.

A batch of a route with ``VirtualPartitions`` is split by key (its hash modulo
``concurrency``; a keyless message by its offset) into virtual partitions, each a
``Messages`` of its own in offset order, all handed to the handler at once. A key always
lands in the same virtual partition, so its order is kept, and a virtual partition is the
same one each time its messages come again, so its failures are counted on their own.

Every offset's completion is kept: the offset committed is past the contiguous prefix of
the batch that is done, never past the highest one. Whenever a virtual partition finishes
and that prefix grew, it is committed at once, while the others still run, so a crash
re-delivers at most what was in flight.

A failing virtual partition fails alone: the route's ``Retry`` and ``DeadLetterQueue``
count its attempts, what the others finished stands (left out when the batch comes again,
like dead letters), and the partition is rewound to the first offset that is not done and
paused for the failing one's backoff. The commit stops there until it succeeds or its
message goes to the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
from aiokafka import ConsumerRecord, TopicPartition

from aiostream_kafka.codecs import Decoder
from aiostream_kafka.contracts.checks import callable_name
from aiostream_kafka.errors import DecodeError, ProcessingTimeoutError, VirtualPartitionKeyError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.messages import Message, Messages, SeekTarget, from_records
from aiostream_kafka.processing.policy import FailurePolicy, is_fatal
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions
from aiostream_kafka.runtime.cancellation import being_cancelled, cancel_and_wait, not_cancelled_by_us
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.failures import FailureHandler, report_failed, report_retry
from aiostream_kafka.runtime.in_flight import InFlight
from aiostream_kafka.runtime.offsets import Offsets
from aiostream_kafka.runtime.pauses import Pauses
from aiostream_kafka.runtime.statistics import Statistics

if TYPE_CHECKING:
    from aiostream_kafka.runtime.executor import RunningRoute

Record: TypeAlias = ConsumerRecord[bytes, bytes]

_NO_LIMIT = contextlib.nullcontext()


def _offset_of(record: Record) -> int:
    offset: int = record.offset
    return offset


class VirtualPartition(Messages[Any]):
    """One virtual partition of a batch, as its handler call gets it.

    Its marks count for its own messages only; a ``pause``, ``seek`` or ``resume`` is asked
    for the whole partition, acted on once every virtual partition of the batch has
    returned (the last one asked wins).
    """

    __slots__ = ("_batch", "virtual_partition")

    virtual_partition: int  # which one of the batch's
    _batch: SplitBatch

    def holds(self, offset: int) -> bool:
        records = self._records
        at = bisect_left(records, offset, key=_offset_of)
        return at < len(records) and records[at].offset == offset

    def mark_as_consumed(self, message: Message[Any]) -> None:
        ours = message.topic == self.topic and message.partition == self.partition
        if ours and not self.holds(message.offset):
            self._check_open("mark_as_consumed")
            raise ValueError(
                f"{message!r} is in another virtual partition of {self.topic}[{self.partition}] than "
                f"this one; mark it in the handler call that holds it"
            )
        super().mark_as_consumed(message)

    def pause(self, for_ms: int | None = None, *, duration: float | None = None) -> None:
        super().pause(for_ms, duration=duration)
        self._batch.after_batch = self.after_batch

    def resume(self) -> None:
        super().resume()
        self._batch.after_batch = None

    def seek(self, target: SeekTarget) -> None:
        super().seek(target)
        self._batch.after_batch = self.after_batch

    def __repr__(self) -> str:
        span = f"{self.first_offset}..{self.last_offset}" if len(self) else "empty"
        where = f"{self.cluster}/{self.topic}[{self.partition}]"
        return f"<Messages {where} virtual partition {self.virtual_partition}: {span} ({len(self)})>"

    def done(self, *, whole: bool) -> list[int]:
        """The offsets it finished: all of them (``whole``), else those before its mark."""
        marked = self.marked_offset
        if whole:
            return [record.offset for record in self._records]
        if marked is None:
            return []
        return [record.offset for record in self._records if record.offset < marked]

    def first_unmarked(self) -> int | None:
        """Its first message not marked (None: all are)."""
        marked = self.marked_offset
        return next((r.offset for r in self._records if marked is None or r.offset >= marked), None)


class SplitBatch(Messages[Any]):
    """A batch split into virtual partitions, as the listener holds it for its partition: a
    Consumer's ``mark_as_consumed`` reaches the virtual partition that holds the message."""

    __slots__ = ("parts",)

    parts: list[VirtualPartition]

    def mark_as_consumed(self, message: Message[Any]) -> None:
        self._check_open("mark_as_consumed")
        for part in self.parts:
            if part.holds(message.offset):
                part.mark_as_consumed(message)
                return
        raise ValueError(
            f"{message!r} is not in this batch ({self.topic}[{self.partition}]); mark it on its own batch"
        )


def _made(
    kind: type[Messages[Any]],
    records: Sequence[Record],
    messages: list[Message[Any]] | None,
    *,
    topic: str,
    partition: int,
    cluster: str,
    decoder: Decoder | None,
    attempt: int,
    is_revoked: Callable[[], bool],
) -> Any:
    """A batch of ``kind`` over ``records`` (their messages made already, or on first use),
    as ``messages.batch_of`` makes one."""
    batch = kind((), topic=topic, partition=partition, cluster=cluster, attempt=attempt)
    batch._messages = messages
    batch._records = records
    batch._decoder = decoder
    batch._is_revoked = is_revoked
    return batch


@dataclass
class Split:
    """A batch's records by virtual partition (only the non-empty ones, in index order), and
    the message the key function failed on, if it did: the split stops there."""

    parts: list[tuple[int, list[Record], list[Message[Any]] | None]]
    key_failure: tuple[Record, VirtualPartitionKeyError] | None = None


class Splitter:
    """How one route's batches are split, and each virtual partition's failure bookkeeping
    (one ``FailurePolicy`` each, and one more for the key function's failures)."""

    def __init__(self, spec: VirtualPartitions, label: str, make_policy: Callable[[], FailurePolicy]) -> None:
        self.spec = spec
        self._label = label
        self.policies = [make_policy() for _ in range(spec.concurrency + 1)]

    @property
    def key_index(self) -> int:
        """The index the key function's failures are counted under."""
        return self.spec.concurrency

    def forget(self, partition: int) -> None:
        for policy in self.policies:
            policy.forget(partition)

    def split(self, records: Sequence[Record], cluster: str, decoder: Decoder | None) -> Split:
        count, key = self.spec.concurrency, self.spec.key
        parts: dict[int, list[Record]] = {}
        if key is None:  # the message key: read from the records, no Message made
            for record in records:
                value = record.key
                index = (record.offset if value is None else hash(value)) % count
                parts.setdefault(index, []).append(record)
            return Split([(index, parts[index], None) for index in sorted(parts)])
        messages: dict[int, list[Message[Any]]] = {}
        failure = None
        for record, message in zip(records, from_records(records, cluster, decoder), strict=True):
            try:
                value = key(message)
                index = (message.offset if value is None else hash(value)) % count
            except Exception as error:
                if is_fatal(error):
                    raise
                failure = (record, self._key_error(key, message, error))
                break
            parts.setdefault(index, []).append(record)
            messages.setdefault(index, []).append(message)
        return Split([(index, parts[index], messages[index]) for index in sorted(parts)], failure)

    def _key_error(self, key: object, message: Message[Any], error: Exception) -> VirtualPartitionKeyError:
        failure = VirtualPartitionKeyError(
            f"{self._label}: the virtual partitions key {callable_name(key)} failed on "
            f"{message.topic}[{message.partition}] at offset {message.offset} "
            f"({type(error).__name__}: {error}); it must return something hashable, or None"
        )
        failure.__cause__ = error
        return failure


class Completion:
    """Which offsets of one batch are done, and so how far it may be committed: past the
    contiguous prefix that is done (``done_before``: offsets left out of it, done already)."""

    def __init__(self, chunk: Sequence[Record], done_before: set[int] | None) -> None:
        self._offsets: list[int] = [record.offset for record in chunk]
        self._done: set[int] = set()
        self._before = done_before or set()
        self._next = 0
        self.finish(())

    def finish(self, offsets: Iterable[int]) -> None:
        self._done.update(offsets)
        at, order, done, before = self._next, self._offsets, self._done, self._before
        while at < len(order) and (order[at] in done or order[at] in before):
            at += 1
        self._next = at

    @property
    def next_offset(self) -> int:
        """The offset to commit: the first not done, or past the batch."""
        order = self._offsets
        return order[self._next] if self._next < len(order) else order[-1] + 1

    @property
    def done_count(self) -> int:
        """How many offsets of the batch were finished here (those done before not counted)."""
        return len(self._done)

    @property
    def complete(self) -> bool:
        return self._next == len(self._offsets)

    def ahead(self) -> list[int]:
        """What is done past ``next_offset``."""
        return [offset for offset in self._offsets[self._next :] if offset in self._done]


@dataclass
class _Outcome:
    part: VirtualPartition
    error: Exception | None
    poison: int | None = None  # the offset whose payload did not decode, if that was the error


class VirtualExecutor:
    """One batch of a route with virtual partitions through its handler (see the module)."""

    def __init__(
        self,
        *,
        monitor: Monitor,
        server: str,
        in_flight: InFlight,
        offsets: Offsets,
        pauses: Pauses,
        failures: FailureHandler,
        statistics: Statistics,
    ) -> None:
        self._monitor = monitor
        self._server = server
        self._in_flight = in_flight
        self._offsets = offsets
        self._pauses = pauses
        self._failures = failures
        self._statistics = statistics

    async def run(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        chunk: Sequence[Record],
        live: Sequence[Record],
        limiter: anyio.CapacityLimiter | None,
        where: dict[str, Any],
    ) -> bool:
        """True if the partition goes on with its next batch."""
        splitter = route.virtual
        assert splitter is not None
        whole, parts, key_failure = self._split(tp, route, splitter, live)
        self._monitor.emit(
            "batch.received",
            **where,
            count=len(live),
            first_offset=live[0].offset,
            server=self._server,
            messages=whole,
            virtual_partitions=len(parts),
        )
        began = time.perf_counter()
        # What the batch accounts for but the handler does not get (dead letters, what the
        # route's flow skipped) is done already.
        left_out = None
        if len(live) < len(chunk):
            left_out = {r.offset for r in chunk}.difference(r.offset for r in live)
        completion = Completion(chunk, left_out)
        self._in_flight.hold(tp, whole)
        try:
            async with limiter if limiter is not None else _NO_LIMIT:
                outcomes = await self._together(consumer, tp, route, parts, completion)
        finally:
            whole.close()
            for part in parts:
                part.close()
            self._in_flight.release(tp)
        if key_failure is not None:
            outcomes.append(key_failure)
        for outcome in outcomes:
            if outcome.error is None:
                splitter.policies[outcome.part.virtual_partition].succeeded(tp.partition)
        failed = [outcome for outcome in outcomes if outcome.error is not None]
        if failed:
            return await self._failed(consumer, tp, route, splitter, failed, completion, where)
        self._offsets.positions[tp] = chunk[-1].offset + 1
        self._statistics.processed += len(live)
        next_offset = completion.next_offset
        self._offsets.advance(tp, next_offset)
        self._monitor.emit(
            "batch.processed",
            **where,
            count=len(live),
            first_offset=live[0].offset,
            last_offset=live[-1].offset,
            attempt=max(part.attempt for part in parts),
            duration=time.perf_counter() - began,
            virtual_partitions=len(parts),
        )
        if whole.after_batch is None:
            return True
        if whole.after_batch[0] == "pause":  # it resumes at the first offset not done (manual offsets)
            self._offsets.done_ahead(tp, completion.ahead())
        await self._pauses.apply(consumer, tp, whole.after_batch, next_offset=next_offset)
        return False

    def _split(
        self, tp: TopicPartition, route: RunningRoute, splitter: Splitter, live: Sequence[Record]
    ) -> tuple[SplitBatch, list[VirtualPartition], _Outcome | None]:
        topic = route.topic
        revoked = self._in_flight.revoked

        def is_revoked() -> bool:
            return tp in revoked

        def made(
            kind: type[Messages[Any]],
            records: Sequence[Record],
            messages: list[Message[Any]] | None,
            attempt: int,
        ) -> Any:
            return _made(
                kind,
                records,
                messages,
                topic=tp.topic,
                partition=tp.partition,
                cluster=topic.cluster,
                decoder=topic.decoder,
                attempt=attempt,
                is_revoked=is_revoked,
            )

        split = splitter.split(live, topic.cluster, topic.decoder)
        whole: SplitBatch = made(SplitBatch, live, None, 1)
        parts: list[VirtualPartition] = []
        for index, records, messages in split.parts:
            part: VirtualPartition = made(
                VirtualPartition, records, messages, splitter.policies[index].attempt(tp.partition)
            )
            part.virtual_partition, part._batch = index, whole
            parts.append(part)
        whole.parts = parts
        key_failure = None
        if split.key_failure is not None:
            record, error = split.key_failure
            index = splitter.key_index
            failing: VirtualPartition = made(
                VirtualPartition, [record], None, splitter.policies[index].attempt(tp.partition)
            )
            failing.virtual_partition, failing._batch = index, whole
            poison = record.offset if isinstance(error.__cause__, DecodeError) else None
            key_failure = _Outcome(failing, error, poison)
        return whole, parts, key_failure

    async def _together(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        parts: list[VirtualPartition],
        completion: Completion,
    ) -> list[_Outcome]:
        """Every virtual partition in a task of its own; each time one ends and the batch's done
        prefix grew while others still run, that prefix is committed. A stop or revocation
        that cancels this cancels them all."""
        manual = route.topic.route.manual_offset_management
        tasks = {asyncio.ensure_future(self._handle(route, part)): part for part in parts}
        outcomes: list[_Outcome] = []
        pending: set[asyncio.Task[Exception | None]] = set(tasks)
        committed = completion.next_offset
        try:
            while pending:
                ended, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in ended:
                    part, error = tasks[task], task.result()  # a fatal error is raised here
                    completion.finish(part.done(whole=error is None and not manual))
                    outcomes.append(_Outcome(part, error, _poison(error, part)))
                if pending and completion.next_offset > committed:
                    committed = completion.next_offset
                    self._offsets.advance(tp, committed)
                    await self._offsets.commit(consumer, only=[tp])
        except BaseException:
            await cancel_and_wait(tasks)
            raise
        outcomes.sort(key=lambda outcome: outcome.part.virtual_partition)
        return outcomes

    async def _handle(self, route: RunningRoute, part: VirtualPartition) -> Exception | None:
        """One virtual partition through the handler: the error it failed with, if it did."""
        timeout = route.timeout
        try:
            if timeout is None:
                await route.invoke(part)
            else:
                with anyio.move_on_after(timeout) as scope:
                    await route.invoke(part)
                if scope.cancel_called:  # even if the handler swallowed the cancellation and returned
                    raise ProcessingTimeoutError(
                        f"{route.handler_name} took longer than processing_timeout={timeout}s on "
                        f"{part.topic}[{part.partition}] at offset {part.first_offset} "
                        f"(virtual partition {part.virtual_partition})"
                    )
        except Exception as error:
            if is_fatal(error):
                raise
            return error
        except asyncio.CancelledError as cancelled:
            if being_cancelled():
                raise
            return not_cancelled_by_us(route.handler_name, cancelled)
        return None

    async def _failed(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: RunningRoute,
        splitter: Splitter,
        failed: list[_Outcome],
        completion: Completion,
        where: dict[str, Any],
    ) -> bool:
        """Each failing virtual partition retried or given up under its own count; what the
        others finished stands. True if nothing of the batch is left to do."""
        self._statistics.processed += completion.done_count  # before any dead letter counts as done
        delays: list[float] = []
        for outcome in failed:
            part, error = outcome.part, outcome.error
            assert error is not None
            policy = splitter.policies[part.virtual_partition]
            index = None if part.virtual_partition == splitter.key_index else part.virtual_partition
            at = {**where, "virtual_partition": index}
            first_unprocessed = part.first_unmarked()
            if first_unprocessed is None:  # it raised after marking all it had: nothing to redo
                self._monitor.emit("error.occurred", **at, type="handler.after_marking_all", error=error)
                completion.finish(part.done(whole=True))
                continue
            decision = policy.failed(tp.partition, first_unprocessed, error, poison_offset=outcome.poison)
            report_failed(self._monitor, at, first_unprocessed, decision, error)
            if decision.action in ("retry", "wait"):
                delays.append(decision.delay)
                report_retry(self._monitor, at, first_unprocessed, decision)
                continue
            culprit = part.as_received(decision.offset)
            if await self._failures.give_up(route.topic, culprit, error, decision, at):
                completion.finish([culprit.offset])
            else:
                delays.append(policy.backoff.delay(decision.attempts))
        next_offset = completion.next_offset
        self._offsets.advance(tp, next_offset)
        if completion.complete:
            self._offsets.positions[tp] = next_offset
            return True
        self._offsets.done_ahead(tp, completion.ahead())
        if delays:
            self._pauses.pause(consumer, tp, seek_to=next_offset, delay=max(delays))
        else:  # each failure was given up, but what followed it in its virtual partition comes again
            consumer.seek(tp, next_offset)
        return False


def _poison(error: Exception | None, part: VirtualPartition) -> int | None:
    """The offset of the message that cannot be decoded, if that is what failed in ``part``."""
    if (
        isinstance(error, DecodeError)
        and (error.topic, error.partition) == (part.topic, part.partition)
        and part.holds(error.offset)
    ):
        return error.offset
    return None
