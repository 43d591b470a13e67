"""A Listener: one subscription group's consumer loop (poll, process per partition, commit).

Each poll's records are split per partition and handed to the handlers in batches of at
most ``max_messages``, in offset order; partitions run concurrently up to a bound, one
partition never concurrently with itself. What a handler finished is committed before the
same partition's next batch starts, and once more at the end of the poll, so a crash
repeats at most one batch per partition.

A failing batch rewinds and pauses only its own partition and is tried again after a
backoff; with a dead-letter queue, the message it keeps failing on is sent there and the
partition moves on. Fatal errors (MemoryError, KeyboardInterrupt, SystemExit) are never
retried: they stop the listener and the Supervisor lets them through.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaConnectionError, KafkaError

from aiostream_kafka.consumer import Consumer
from aiostream_kafka.diagnosis import connection_error
from aiostream_kafka.errors import DecodeError, HandlerCancelledError, ProcessingTimeoutError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.messages import AfterBatch, Messages, batch_of
from aiostream_kafka.processing.dead_letter import dispatch
from aiostream_kafka.processing.policy import FailurePolicy, is_fatal
from aiostream_kafka.routing.topology import SubscriptionGroup, Topic
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.cancellation import being_cancelled
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.fetch_failures import FetchFailure, Records, locate, remedy
from aiostream_kafka.runtime.in_hand import InHand
from aiostream_kafka.runtime.reachability import CLIENT_CLUSTER

if TYPE_CHECKING:
    from aiostream_kafka.app import App

Invoke = Callable[[Messages[Any]], Awaitable[None]]

#: How long the cleanup after a stop (last commit, hooks, leaving the group) may take.
CLOSE_TIMEOUT = 15.0

#: How often an idle listener looks for partitions whose position moved past what it was
#: handed (transaction markers, aborted records) so that it can commit there (seconds).
SKIPPED_CHECK_INTERVAL = 1.0

#: Where our consumers differ from aiokafka's defaults, so that many idle subscription groups
#: in one process cost little (``benchmarks/bench_scale.py``: 50 idle groups used 8% of a
#: core with aiokafka's defaults, under 4% with these). A cluster's own settings win.
CONSUMER_DEFAULTS = {
    # How long the broker holds a fetch that finds nothing (aiokafka: 500): an idle consumer
    # asks once a second instead of twice; a message that arrives is still returned at once.
    # The price: a partition resumed or sought while its broker's other partitions are idle
    # is fetched when the fetch in flight returns, up to this long later.
    "fetch_max_wait_ms": 1000,
    # The timer of aiokafka's fetch routine (aiokafka: 200), which otherwise wakes on the
    # events it serves (records consumed, seek, resume, rebalance): only a fallback.
    "consumer_timeout_ms": 1000,
}


@dataclass
class _Route:
    """A topic as this listener runs it: its handler and its failure bookkeeping."""

    topic: Topic
    invoke: Invoke
    policy: FailurePolicy
    instance: Consumer | None

    @property
    def timeout(self) -> float | None:
        return self.topic.route.processing_timeout


#: The pause token of a partition set aside while a slow batch runs (see _set_aside_slow).
_SET_ASIDE = object()
_NO_LIMIT = contextlib.nullcontext()


async def _together(here: Awaitable[None], beside: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``here`` in this task and ``beside`` in tasks of their own, until all are done.

    A task group's in miniature: if any fails or this task is cancelled, the others are
    cancelled and waited for, then the first error is raised. Plain asyncio tasks, since
    this runs for every poll that holds several partitions and an anyio task group with its
    scopes and handles cost twice as much (the partitions' own cancel scopes still work).
    """
    tasks = [asyncio.ensure_future(coroutine) for coroutine in beside]
    try:
        await here
        for task in tasks:
            await task
    except BaseException:
        for task in tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait(tasks)
        for task in tasks:  # retrieved, so that asyncio does not report them as lost
            if not task.cancelled():
                task.exception()
        raise


class Listener:
    def __init__(
        self,
        group: SubscriptionGroup,
        app: App,
        monitor: Monitor,
        *,
        client_id: str,
        concurrency: int,
        retry_backoff: Backoff,
        revoke_timeout: float = 10.0,
        statistics_interval: float | None = 5.0,
        slow_batch_after: float | None = 30.0,
    ) -> None:
        self.group = group
        self._app = app
        self._monitor = monitor
        self._client_id = client_id
        self._concurrency = concurrency
        self._retry_backoff = retry_backoff
        self._revoke_timeout = revoke_timeout
        self._statistics_interval = statistics_interval
        self._slow_batch_after = slow_batch_after
        self._server = group.cluster.settings.bootstrap_servers[0]
        self._tags = {
            "cluster": group.cluster.name,
            "group": group.group_id,
            "subscription_group": group.name,
        }
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self._reset()
        #: Set once the listener has polled; the Supervisor uses it to reset its backoff.
        self.healthy = False
        #: What was processed but could not be committed (the group moved on): kept across
        #: rebalances and restarts, so that a partition that comes back is not processed twice.
        self._uncommitted: dict[TopicPartition, int] = {}

    def _reset(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._dead: dict[TopicPartition, set[int]] = {}  # dead-lettered, not yet committed past
        self._current: dict[TopicPartition, Messages[Any]] = {}  # the batch a handler holds
        self._in_flight: dict[TopicPartition, anyio.Event] = {}  # set when the partition's work ends
        self._scopes: dict[TopicPartition, anyio.CancelScope] = {}
        self._revoked: set[TopicPartition] = set()
        self._pause_tokens: dict[TopicPartition, object] = {}
        self._positions: dict[TopicPartition, int] = {}  # next offset after the last handled batch
        self._handed: dict[TopicPartition, int] = {}  # next offset after the last record polled
        self._committed: dict[TopicPartition, int | None] = {}  # last committed (None: never)
        self._skipped_checked = 0.0
        self._unreadable: dict[TopicPartition, int] = {}  # failed fetches in a row, per partition
        self._processed = 0
        self._last_commit: float | None = None
        self._consumer: ConsumerClient | None = None
        self._background: anyio.abc.TaskGroup | None = None
        self._started: dict[TopicPartition, float] = {}  # when the batch in hand began (monotonic)
        self._slow: set[TopicPartition] = set()  # batches in hand already reported slow
        # The poll loop hands over to a new one when a batch holds it up (see _set_aside_slow):
        self._poller: object = None  # the loop that may poll
        self._polling: anyio.CancelScope | None = None  # around the poller's getmany
        self._loops = 0
        self._loops_ended = anyio.Event()
        self._limiter = anyio.CapacityLimiter(self._concurrency)

    def request_stop(self) -> None:
        """Stop after the batches in hand; a listener waiting on Kafka stops at once."""
        self._stopping = True
        if self._polling is not None:
            self._polling.cancel()
        elif self._scope is not None and not self._in_flight:
            self._scope.cancel()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        self._reset()
        CLIENT_CLUSTER.set(self.group.cluster.name)  # this task's, and its consumer's tasks'
        consumer = self._consumer = self._app.clients.consumer(
            self.group.cluster,
            **{
                "client_id": self._client_id,
                **CONSUMER_DEFAULTS,
                **self.group.cluster.settings.connection_kwargs(),
                **self.group.consumer_settings,
                "group_id": self.group.group_id,
                "enable_auto_commit": False,
                "auto_offset_reset": self.group.initial_offset,
            },
        )
        self._routes = {topic.name: self._route(topic) for topic in self.group.topics}
        instances = [route.instance for route in self._routes.values() if route.instance is not None]
        try:
            with anyio.CancelScope() as self._scope:
                if self._stopping:
                    self._scope.cancel()
                consumer.subscribe(list(self._routes), listener=_RebalanceListener(self, consumer))
                try:
                    await consumer.start()
                except KafkaConnectionError as error:
                    raise await connection_error(self.group.cluster, error) from error
                for instance in instances:
                    await instance.on_start()
                self._monitor.emit("listener.started", **self._tags, topics=list(self._routes))
                async with anyio.create_task_group() as background:
                    self._background = background
                    if self._statistics_interval:
                        background.start_soon(self._statistics, consumer, self._statistics_interval)
                    if self._slow_batch_after:
                        background.start_soon(self._watch_slow_batches, consumer, self._slow_batch_after)
                    self._poller = token = object()
                    await self._run_loop(consumer, token)
                    await self._loops_ended.wait()  # loops set aside finish their batches
                    background.cancel_scope.cancel()
        finally:
            self._scope = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await self._commit(consumer)
                for instance in instances:
                    await self._quietly(instance.shutdown())
                await consumer.stop()
            self._monitor.emit("listener.stopped", **self._tags)

    def _route(self, topic: Topic) -> _Route:
        route = topic.route
        backoff = route.retry.as_backoff() if route.retry is not None else self._retry_backoff
        transient = route.retry.transient if route.retry is not None else ()
        policy = FailurePolicy(backoff, route.dead_letter_queue, transient)
        if route.consumer is None:
            assert route.handler is not None
            return _Route(topic, route.handler, policy, None)
        instance = route.consumer()
        instance.bind(self._app, topic.name, topic.cluster.name, self)
        return _Route(topic, instance.consume, policy, instance)

    async def _run_loop(self, consumer: ConsumerClient, token: object) -> None:
        self._loops += 1
        try:
            await self._loop(consumer, token)
        finally:
            self._loops -= 1
            if not self._loops:
                self._loops_ended.set()

    async def _loop(self, consumer: ConsumerClient, token: object) -> None:
        """Poll, process, commit, for as long as this loop is the poller (``token``)."""
        limiter = self._limiter
        max_records = self.group.max_messages * self._concurrency
        while not self._stopping and self._poller is token:
            with anyio.CancelScope() as self._polling:
                try:
                    records = await consumer.getmany(
                        timeout_ms=self.group.max_wait_ms, max_records=max_records
                    )
                except Exception as error:
                    failure = locate(error)
                    if failure is None:
                        raise
                    records = await self._unreadable_partition(consumer, failure)
                else:
                    if self._unreadable and records:
                        self._readable_again(records)
            self._polling = None
            if self._stopping or self._poller is not token:
                return  # a stop cancelled the poll (what it had fetched comes again next time)
            self.healthy = True
            if not records:
                await self._commit_skipped(consumer)
                continue
            for tp, polled in records.items():
                self._handed[tp] = polled[-1].offset + 1
            try:
                self._in_flight.update({tp: anyio.Event() for tp in records})
                # Each turn of the event loop the work waits for costs latency (other tasks'
                # I/O runs in between), so: the first partition runs in this task at once, the
                # others in tasks beside it, and the limiter (whose checkpoint is a turn) only
                # when there are more partitions than it lets run at a time.
                [(first, batch), *others] = records.items()
                bound = limiter if len(records) > self._concurrency else None
                if not others:  # the usual poll under load: nothing to run beside it
                    await self._partition(consumer, first, batch, bound)
                else:
                    await _together(
                        self._partition(consumer, first, batch, bound),
                        [self._partition(consumer, tp, more, bound) for tp, more in others],
                    )
                await self._commit(consumer)
            finally:
                for tp in records:
                    self._in_flight.pop(tp, None)
                    if self._pause_tokens.get(tp) is _SET_ASIDE:  # nothing else paused it since
                        self._resume(consumer, tp)

    async def _partition(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> None:
        try:
            with anyio.CancelScope() as self._scopes[tp]:
                await self._batches(consumer, tp, records, limiter)
        finally:
            self._scopes.pop(tp, None)
            self._in_flight[tp].set()

    async def _batches(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> None:
        route = self._routes[tp.topic]
        size = self.group.max_messages
        for start in range(0, len(records), size):
            if tp in self._revoked:
                return  # leaving this partition: the rest is for its next owner
            chunk = records[start : start + size]
            dead = self._dead.get(tp)
            live = [r for r in chunk if r.offset not in dead] if dead else chunk
            if not live:
                self._done[tp] = chunk[-1].offset + 1
                continue
            messages = self._messages(route, tp, live)
            where = {**self._tags, "topic": tp.topic, "partition": tp.partition}
            self._monitor.emit(
                "batch.received",
                **where,
                count=len(live),
                first_offset=live[0].offset,
                server=self._server,
                messages=messages,
            )
            began = time.perf_counter()
            self._current[tp] = messages
            self._started[tp] = time.monotonic()
            try:
                if limiter is None and route.timeout is None:
                    await route.invoke(messages)
                else:
                    await self._invoke_bounded(route, messages, limiter)
            except Exception as error:
                if is_fatal(error):
                    raise
                await self._failed(consumer, tp, route, messages, error, where)
                return
            except asyncio.CancelledError as cancelled:
                if being_cancelled():
                    raise
                failure = HandlerCancelledError(
                    f"{route.topic.route.handler_name} raised CancelledError, but nothing cancelled it"
                )
                failure.__cause__ = cancelled
                await self._failed(consumer, tp, route, messages, failure, where)
                return
            finally:
                messages.close()
                self._current.pop(tp, None)
                self._started.pop(tp, None)
                self._slow.discard(tp)
            route.policy.succeeded(tp.partition)
            self._positions[tp] = chunk[-1].offset + 1
            self._processed += len(live)
            progress = (
                messages.marked_offset if route.topic.route.manual_offset_management else live[-1].offset + 1
            )
            if progress is not None:
                self._done[tp] = max(progress, self._done.get(tp, 0))
            self._monitor.emit(
                "batch.processed",
                **where,
                count=len(live),
                first_offset=live[0].offset,
                last_offset=live[-1].offset,
                attempt=messages.attempt,
                duration=time.perf_counter() - began,
            )
            if messages.after_batch is not None:
                # With manual offsets, what the handler did not mark is not done: resume there.
                resume_at = (
                    next(
                        (m.offset for m in messages if progress is None or m.offset >= progress),
                        chunk[-1].offset + 1,
                    )
                    if route.topic.route.manual_offset_management
                    else chunk[-1].offset + 1
                )
                await self._after_batch(consumer, tp, messages.after_batch, next_offset=resume_at)
                return
            if start + size < len(records):
                await self._commit(consumer, only=[tp])

    async def _invoke_bounded(
        self, route: _Route, messages: Messages[Any], limiter: anyio.CapacityLimiter | None
    ) -> None:
        """The handler, after its turn under the limiter, within the route's processing_timeout."""
        async with limiter if limiter is not None else _NO_LIMIT:
            with anyio.move_on_after(route.timeout if route.timeout is not None else math.inf) as scope:
                await route.invoke(messages)
            if scope.cancel_called:  # even if the handler swallowed the cancellation and returned
                raise ProcessingTimeoutError(
                    f"{route.topic.route.handler_name} took longer than processing_timeout="
                    f"{route.timeout}s on {messages.topic}[{messages.partition}] at offset "
                    f"{messages.first_offset}"
                )

    def _messages(
        self, route: _Route, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> Messages[Any]:
        return batch_of(
            records,
            topic=tp.topic,
            partition=tp.partition,
            cluster=route.topic.cluster.name,
            decoder=route.topic.decoder,
            attempt=route.policy.attempt(tp.partition),
            is_revoked=lambda: tp in self._revoked,
        )

    # --- failures ------------------------------------------------------------------------

    async def _failed(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        route: _Route,
        messages: Messages[Any],
        error: Exception,
        where: dict[str, Any],
    ) -> None:
        """Keep what the handler marked, then retry later or give the culprit up, per the route."""
        marked = messages.marked_offset
        if marked is not None:
            self._done[tp] = max(marked, self._done.get(tp, 0))
        first_unprocessed = next((m.offset for m in messages if marked is None or m.offset >= marked), None)
        if first_unprocessed is None:  # it raised after marking the whole batch: nothing to redo
            self._monitor.emit("error.occurred", **where, type="handler.after_marking_all", error=error)
            consumer.seek(tp, messages.last_offset + 1)
            return
        poison = (
            error.offset
            if isinstance(error, DecodeError)
            and (error.topic, error.partition) == (tp.topic, tp.partition)
            and any(m.offset == error.offset for m in messages)
            else None
        )
        decision = route.policy.failed(tp.partition, first_unprocessed, error, poison_offset=poison)
        transient = decision.action == "wait"
        self._monitor.emit(
            "batch.failed",
            **where,
            offset=first_unprocessed,
            attempt=decision.attempts,
            transient=transient,
            error=error,
        )
        if decision.action in ("retry", "wait"):
            self._pause(consumer, tp, seek_to=first_unprocessed, delay=decision.delay)
            self._monitor.emit(
                "retry.scheduled",
                **where,
                offset=first_unprocessed,
                attempt=decision.attempts if transient else decision.attempts + 1,
                delay=decision.delay,
                transient=transient,
            )
            return

        culprit = messages.as_received(decision.offset)
        queue = route.topic.route.dead_letter_queue
        assert queue is not None
        if decision.action == "dispatch":
            try:
                await dispatch(
                    self._app.producers[route.topic.dead_letter_cluster],
                    queue,
                    culprit,
                    error=error,
                    attempts=decision.attempts,
                    group_id=self.group.group_id,
                )
            except Exception as dispatch_error:
                if is_fatal(dispatch_error):
                    raise
                self._monitor.emit("error.occurred", **where, type="dlq.dispatch", error=dispatch_error)
                delay = route.policy.backoff.delay(decision.attempts)
                self._pause(consumer, tp, seek_to=first_unprocessed, delay=delay)
                return
        self._monitor.emit(
            "dlq.dispatched",
            **where,
            offset=culprit.offset,
            dlq_topic=queue.topic,
            dlq_cluster=route.topic.dead_letter_cluster if queue.topic else None,
            attempts=decision.attempts,
            error=error,
        )
        if culprit.offset == first_unprocessed:  # resume right after it
            self._done[tp] = max(culprit.offset + 1, self._done.get(tp, 0))
            consumer.seek(tp, culprit.offset + 1)
        else:  # a poison message after unmarked work: that work comes again, without the culprit
            self._dead.setdefault(tp, set()).add(culprit.offset)
            consumer.seek(tp, first_unprocessed)

    async def _unreadable_partition(self, consumer: ConsumerClient, failure: FetchFailure) -> Records:
        """Hold back the one partition the consumer could not read, report it, and try it again
        later; hand on what the failed poll had read of the others."""
        tp, error = failure.partition, failure.error
        offset = failure.offset
        if offset is None:
            try:
                offset = await consumer.position(tp)
            except KafkaError:
                offset = None
        attempt = self._unreadable[tp] = self._unreadable.get(tp, 0) + 1
        route = self._routes.get(tp.topic)
        delay = (route.policy.backoff if route else self._retry_backoff).delay(attempt)
        self._pause(consumer, tp, seek_to=offset, delay=delay)
        self._monitor.emit(
            "fetch.failed",
            **self._tags,
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            attempt=attempt,
            retry_in=round(delay, 3),
            remedy=remedy(error, self.group.cluster.name),
            error=error,
        )
        return failure.salvaged

    def _readable_again(self, records: Records) -> None:
        for tp in records.keys() & self._unreadable.keys():
            attempts = self._unreadable.pop(tp)
            self._monitor.emit(
                "fetch.recovered", **self._tags, topic=tp.topic, partition=tp.partition, attempts=attempts
            )

    # --- pause, resume, seek -------------------------------------------------------------

    def _pause(
        self, consumer: ConsumerClient, tp: TopicPartition, *, seek_to: int | None, delay: float | None
    ) -> None:
        """Pause ``tp`` (rewound to ``seek_to``) until ``delay`` seconds pass or it is resumed."""
        if seek_to is not None:
            consumer.seek(tp, seek_to)
        consumer.pause(tp)
        token = self._pause_tokens[tp] = object()
        if delay is not None and self._background is not None:
            self._background.start_soon(self._resume_later, consumer, tp, delay, token)

    async def _resume_later(
        self, consumer: ConsumerClient, tp: TopicPartition, delay: float, token: object
    ) -> None:
        await self._app.clock.sleep(delay)
        if self._pause_tokens.get(tp) is token:
            self._resume(consumer, tp)

    def _resume(self, consumer: ConsumerClient, tp: TopicPartition) -> None:
        self._pause_tokens.pop(tp, None)
        if tp in consumer.assignment():
            consumer.resume(tp)

    async def _after_batch(
        self, consumer: ConsumerClient, tp: TopicPartition, action: AfterBatch, *, next_offset: int | None
    ) -> None:
        kind, argument = action
        if kind == "pause":
            delay = None if argument is None else int(argument) / 1000  # type: ignore[arg-type]
            self._pause(consumer, tp, seek_to=next_offset, delay=delay)
        elif kind == "resume":
            self._resume(consumer, tp)
        elif tp in consumer.assignment():
            await self._seek(consumer, tp, argument)

    async def _seek(self, consumer: ConsumerClient, tp: TopicPartition, target: object) -> None:
        if target == "earliest":
            await consumer.seek_to_beginning(tp)
        elif target == "latest":
            await consumer.seek_to_end(tp)
        elif isinstance(target, datetime):
            found = (await consumer.offsets_for_times({tp: int(target.timestamp() * 1000)})).get(tp)
            if found is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        else:
            assert isinstance(target, int)
            consumer.seek(tp, target)

    # PartitionControl, for Consumer.pause / resume / seek / mark_as_consumed / is_revoked:

    def current(self, topic: str, partition: int) -> Messages[Any] | None:
        return self._current.get(TopicPartition(topic, partition))

    def in_hand(self) -> list[InHand]:
        """The batches handlers hold now, for the loop watchdog (another thread) and a stop's report.

        Read-only, and it copies ``_current`` before reading it, which a thread may do.
        """
        started, routes = self._started, self._routes
        return [
            InHand(
                self.group.cluster.name,
                tp.topic,
                tp.partition,
                batch.first_offset,
                started.get(tp, 0.0),
                route.topic.route.handler_name if (route := routes.get(tp.topic)) else "?",
            )
            for tp, batch in list(self._current.items())
        ]

    async def leave(self) -> None:
        """Close the consumer, leaving the group, while a handler still holds a batch: what a
        stop that gave up on handlers ignoring cancellation does, so that their partitions
        go to another member instead of staying with a task that will not end."""
        if self._consumer is not None:
            await self._consumer.stop()

    def request(self, topic: str, partition: int, action: AfterBatch) -> None:
        tp = TopicPartition(topic, partition)
        batch = self._current.get(tp)
        if batch is not None:  # that partition's handler is running: act when it returns
            batch.after_batch = None if action[0] == "resume" else action
            if action[0] != "resume":
                return
        consumer, background = self._consumer, self._background
        if consumer is None or background is None:
            raise RuntimeError(f"the listener for {topic} is not running")
        if tp not in consumer.assignment():
            raise ValueError(f"partition {partition} of {topic!r} is not assigned to this consumer")
        background.start_soon(lambda: self._after_batch(consumer, tp, action, next_offset=None))

    def is_revoked(self, topic: str, partition: int) -> bool:
        return TopicPartition(topic, partition) in self._revoked

    # --- slow batches --------------------------------------------------------------------

    async def _watch_slow_batches(self, consumer: ConsumerClient, after: float) -> None:
        """Report every batch in hand for longer than ``after`` seconds, once, and set aside
        the partitions holding up the poller, so that the others keep flowing."""
        while True:
            await anyio.sleep(min(1.0, after / 4))
            now = time.monotonic()
            slow = {tp for tp, began in self._started.items() if now - began >= after} - self._slow
            for tp in sorted(slow):
                self._slow.add(tp)
                batch = self._current.get(tp)
                self._monitor.emit(
                    "batch.slow",
                    **self._tags,
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=batch.first_offset if batch is not None else None,
                    duration=round(now - self._started.get(tp, now), 3),
                    handler=self._routes[tp.topic].topic.route.handler_name,
                )
            # A slow partition not set aside yet belongs to the poller's poll: it holds it up.
            if any(self._pause_tokens.get(tp) is not _SET_ASIDE for tp in slow) and self._background:
                self._set_aside_slow(consumer, self._background)

    def _set_aside_slow(self, consumer: ConsumerClient, background: anyio.abc.TaskGroup) -> None:
        """Leave the poll in hand to its loop and start a new poller beside it.

        The poll's unfinished partitions are paused, so that the new poller fetches only the
        others; the old loop ends after its poll (committing it), resuming them unless
        something else paused them meanwhile (a retry, the handler).
        """
        unfinished = [tp for tp, done in self._in_flight.items() if not done.is_set()]
        for tp in unfinished:
            if self._pause_tokens.get(tp) is _SET_ASIDE:
                continue  # an earlier poll's, set aside already
            consumer.pause(tp)
            self._pause_tokens[tp] = _SET_ASIDE
        self._poller = token = object()
        background.start_soon(self._run_loop, consumer, token)

    # --- statistics ----------------------------------------------------------------------

    async def _statistics(self, consumer: ConsumerClient, interval: float) -> None:
        """Every ``interval`` seconds: throughput, lag per partition, paused partitions, last commit."""
        counted, since = self._processed, time.monotonic()
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            lag = {}
            for tp in consumer.assignment():
                high, position = consumer.highwater(tp), self._positions.get(tp)
                if high is not None and position is not None:
                    lag[f"{tp.topic}/{tp.partition}"] = max(0, high - position)
            self._monitor.emit(
                "statistics.emitted",
                **self._tags,
                messages_per_second=round((self._processed - counted) / (now - since), 2),
                processed=self._processed,
                lag=lag,
                assigned=_names(consumer.assignment()),
                paused=_names(consumer.paused()),
                last_commit=self._last_commit,
            )
            counted, since = self._processed, now

    # --- offsets and rebalances ----------------------------------------------------------

    async def _commit(self, consumer: ConsumerClient, only: Iterable[TopicPartition] | None = None) -> None:
        partitions = set(self._done) if only is None else set(only) & set(self._done)
        if not partitions:
            return
        assigned = consumer.assignment()
        offsets = {tp: self._done.pop(tp) for tp in partitions}
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:
            # The group moved on (or the cluster is away): whoever owns these partitions next
            # starts from the last commit and sees these messages again; at-least-once holds.
            # If they come back to this listener, it skips what it had done (on_assigned).
            for tp, offset in offsets.items():
                self._uncommitted[tp] = max(offset, self._uncommitted.get(tp, 0))
            self._monitor.emit("error.occurred", **self._tags, type="commit", error=error)
            return
        self._last_commit = time.time()
        self._committed.update(offsets)
        for tp, offset in offsets.items():
            if self._uncommitted.get(tp, offset) <= offset:
                self._uncommitted.pop(tp, None)
        for tp, offset in offsets.items():
            dead = self._dead.get(tp)
            if dead:
                dead.difference_update({o for o in dead if o < offset})
        self._monitor.emit(
            "offsets.committed",
            **self._tags,
            offsets={f"{tp.topic}/{tp.partition}": offset for tp, offset in offsets.items()},
        )

    async def _commit_skipped(self, consumer: ConsumerClient) -> None:
        """Commit where the consumer moved past records it never handed over.

        A transaction's commit or abort marker takes an offset of its own, and under read
        committed an aborted transaction's records are never returned either, so a group
        that committed only what its handlers saw would keep a lag of at least 1 forever. An
        idle listener therefore commits the consumer's position for every partition whose
        polled records are all committed and whose position is further: only skipped
        records (or a handler's seek forward) lie in between.
        """
        now = time.monotonic()
        if now - self._skipped_checked < SKIPPED_CHECK_INTERVAL:
            return
        self._skipped_checked = now
        try:
            for tp in consumer.assignment() - consumer.paused():
                if tp not in self._committed:
                    if tp in self._handed:
                        continue  # polled in this assignment, not committed yet
                    self._committed[tp] = await consumer.committed(tp)
                committed, handed = self._committed[tp], self._handed.get(tp)
                if handed is not None and committed != handed:
                    continue  # what was polled is not all committed yet: a batch failed, or marks are due
                position = await consumer.position(tp)
                if committed is None or position > committed:
                    self._done[tp] = self._handed[tp] = self._positions[tp] = position
        except KafkaError:
            return  # a rebalance or the cluster is away: the next idle poll looks again
        await self._commit(consumer)

    async def on_revoked(self, consumer: ConsumerClient, revoked: set[TopicPartition]) -> None:
        """Finish (within ``revoke_timeout``) or abandon the revoked partitions' batches, commit
        what is done, then tell the consumers. Other partitions keep going meanwhile."""
        self._revoked |= revoked
        busy = {tp: self._in_flight[tp] for tp in revoked if tp in self._in_flight}
        with anyio.move_on_after(self._revoke_timeout):
            for event in busy.values():
                await event.wait()
        abandoned = sorted(f"{tp.topic}/{tp.partition}" for tp, event in busy.items() if not event.is_set())
        for tp, event in busy.items():
            if not event.is_set():
                scope = self._scopes.get(tp)
                if scope is not None:
                    scope.cancel()
                await event.wait()
        await self._commit(consumer, only=revoked)
        for tp in revoked:
            self._routes[tp.topic].policy.forget(tp.partition)
            self._dead.pop(tp, None)
            self._pause_tokens.pop(tp, None)
            self._positions.pop(tp, None)
            self._handed.pop(tp, None)
            self._committed.pop(tp, None)
            self._unreadable.pop(tp, None)
        for name, route in self._routes.items():
            partitions = sorted(tp.partition for tp in revoked if tp.topic == name)
            if partitions and route.instance is not None:
                await self._quietly(route.instance.revoked(partitions))
        self._monitor.emit(
            "partitions.revoked", **self._tags, partitions=_names(revoked), abandoned=abandoned
        )

    async def on_assigned(self, consumer: ConsumerClient, assigned: set[TopicPartition]) -> None:
        """Take the partitions, moving past what this listener processed but could not commit."""
        self._revoked -= assigned
        resumed: dict[str, int] = {}
        for tp in sorted(assigned & self._uncommitted.keys()):
            done = self._uncommitted.pop(tp)
            try:
                committed = await consumer.committed(tp)
            except KafkaError:
                continue  # not known: process again (at-least-once)
            if committed is None or committed < done:  # nobody got further meanwhile
                consumer.seek(tp, done)
                self._done[tp] = done
                resumed[f"{tp.topic}/{tp.partition}"] = done
        self._monitor.emit(
            "partitions.assigned",
            **self._tags,
            partitions=_names(assigned),
            resumed_after_failed_commit=resumed,
        )

    async def _quietly(self, hook: Awaitable[None]) -> None:
        """Run a user hook whose failure must not stop the listener; report it instead."""
        try:
            await hook
        except Exception as error:
            if is_fatal(error):
                raise
            self._monitor.emit("error.occurred", **self._tags, type="consumer.hook", error=error)


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, listener: Listener, consumer: ConsumerClient) -> None:
        self._listener = listener
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self._listener.on_revoked(self._consumer, revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._listener.on_assigned(self._consumer, assigned)


def _names(partitions: Iterable[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)
