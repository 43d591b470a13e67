"""A Listener: one subscription group's consumer, polling and handing records on.

Each poll's records are split per partition; partitions run concurrently up to a bound,
one partition never concurrently with itself (``Executor`` runs one partition's batches).
What the poll's handlers finished is committed at its end (``Offsets``). A batch that
holds its handler for long is set aside: a new poll loop takes over, so that the other
partitions keep flowing. Fatal errors (MemoryError, KeyboardInterrupt, SystemExit) are
never retried: they stop the listener and the Supervisor lets them through.

The other concerns have files of their own: failures (``failures.py``), pauses and seeks
(``pauses.py``), rebalances (``rebalance.py``), statistics and slow batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any

import anyio
import anyio.abc
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from aiostream_kafka.diagnosis import connection_error
from aiostream_kafka.messages import AfterBatch, Messages
from aiostream_kafka.processing.policy import FailurePolicy
from aiostream_kafka.routing.topology import RoutedTopic, SubscriptionGroup
from aiostream_kafka.runtime.cancellation import cancel_and_wait
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.context import RuntimeContext
from aiostream_kafka.runtime.exactly_once import TRANSACTION_BATCHES
from aiostream_kafka.runtime.executor import Executor, RunningRoute
from aiostream_kafka.runtime.failures import FailureHandler
from aiostream_kafka.runtime.fetch_failures import Records, locate
from aiostream_kafka.runtime.flow import flow_of
from aiostream_kafka.runtime.hooks import call_hook
from aiostream_kafka.runtime.in_flight import InFlight
from aiostream_kafka.runtime.in_hand import InHand
from aiostream_kafka.runtime.offsets import Offsets
from aiostream_kafka.runtime.pauses import Pauses
from aiostream_kafka.runtime.reachability import CLIENT_CLUSTER
from aiostream_kafka.runtime.rebalance import Rebalance
from aiostream_kafka.runtime.slow_batches import watch_slow_batches
from aiostream_kafka.runtime.statistics import Statistics
from aiostream_kafka.runtime.transactions import PartitionTransactions
from aiostream_kafka.runtime.virtual_partitions import Splitter

#: How long the cleanup after a stop (last commit, hooks, leaving the group) may take.
CLOSE_TIMEOUT = 15.0

#: Where our consumers differ from aiokafka's defaults, so that many idle subscription groups
#: in one process cost little (figures: docs/performance.md, "Scale").
#: A cluster's own settings win.
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


async def _together(here: Awaitable[None], beside: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``here`` in this task and ``beside`` in tasks of their own, until all are done.

    A task group's in miniature: if any fails or this task is cancelled, the others are
    cancelled and waited for, then the first error is raised. Plain asyncio tasks, since
    this runs for every poll that holds several partitions and an anyio task group's scopes
    and handles cost more (docs/performance.md, "Latency"; the partitions' own cancel scopes
    still work).
    """
    tasks = [asyncio.ensure_future(coroutine) for coroutine in beside]
    try:
        await here
        for task in tasks:
            await task
    except BaseException:
        await cancel_and_wait(tasks)
        raise


class Listener:
    def __init__(self, group: SubscriptionGroup, context: RuntimeContext) -> None:
        self.group = group
        self._context = context
        self._monitor = context.monitor
        self._server = group.kafka_cluster.settings.bootstrap_servers[0]
        self._tags = {
            "cluster": group.cluster,
            "group": group.group_id,
            "subscription_group": group.name,
        }
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        #: Set once the listener has polled; the Supervisor uses it to reset its backoff.
        self.healthy = False
        self._offsets = Offsets(self._monitor, self._tags)  # outlives a run: see Offsets.resume
        self._reset()

    def _reset(self) -> None:
        """A run's state: a restarted listener starts afresh, with a new consumer."""
        context, tags = self._context, self._tags
        self._offsets.reset()
        self._in_flight = InFlight()
        self._pauses = Pauses(context.clock)
        self._transactions = PartitionTransactions(self.group, context, self._offsets, tags)
        self._failures = FailureHandler(
            group_id=self.group.group_id,
            cluster=self.group.cluster,
            monitor=self._monitor,
            tags=tags,
            offsets=self._offsets,
            pauses=self._pauses,
            producers=context.producers,
            transactions=self._transactions,
        )
        self._statistics = Statistics(self._monitor, tags, self._offsets)
        self._executor = Executor(
            max_messages=self.group.max_messages,
            monitor=self._monitor,
            tags=tags,
            server=self._server,
            in_flight=self._in_flight,
            offsets=self._offsets,
            pauses=self._pauses,
            failures=self._failures,
            statistics=self._statistics,
            transactions=self._transactions,
            clock=context.clock,
        )
        self._routes: dict[str, RunningRoute] = {}
        self._handlers: dict[str, str] = {}  # each topic's handler name, for in_hand
        self._consumer: ConsumerClient | None = None
        self._background: anyio.abc.TaskGroup | None = None
        # The poll loop hands over to a new one when a batch holds it up (see _set_aside_slow):
        self._poller: object = None  # the loop that may poll
        self._polling: anyio.CancelScope | None = None  # around the poller's getmany
        self._loops = 0
        self._loops_ended = anyio.Event()
        self._limiter = anyio.CapacityLimiter(context.concurrency)
        # For _poll_spread: in which of its polls each partition was last taken.
        self._spread_taken: dict[TopicPartition, int] = {}
        self._spread_polls = 0

    def request_stop(self) -> None:
        """Stop after the batches in hand; a listener waiting on Kafka stops at once."""
        self._stopping = self._in_flight.stopping = True
        if self._polling is not None:
            self._polling.cancel()
        elif self._scope is not None and self._in_flight.idle:
            self._scope.cancel()

    # --- a run: from joining the group to leaving it -------------------------------------

    async def run(self) -> None:
        self._reset()
        CLIENT_CLUSTER.set(self.group.cluster)  # this task's, and its consumer's tasks'
        consumer = self._consumer = self._new_consumer()
        self._routes = {topic.name: self._route(topic) for topic in self.group.topics}
        self._handlers = {name: route.handler_name for name, route in self._routes.items()}
        instances = [route.instance for route in self._routes.values() if route.instance is not None]
        try:
            with anyio.CancelScope() as self._scope:
                if self._stopping:
                    self._scope.cancel()
                consumer.subscribe(list(self._routes), listener=self._rebalance(consumer))
                try:
                    await consumer.start()
                except KafkaConnectionError as error:
                    raise await connection_error(self.group.kafka_cluster, error) from error
                for instance in instances:
                    await instance.on_start()
                self._monitor.emit("listener.started", **self._tags, topics=list(self._routes))
                async with anyio.create_task_group() as background:
                    self._background = self._pauses.background = background
                    self._start_watches(consumer, background)
                    self._poller = token = object()
                    await self._run_loop(consumer, token)
                    await self._loops_ended.wait()  # loops set aside finish their batches
                    background.cancel_scope.cancel()
        finally:
            self._scope = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await self._offsets.commit(consumer)
                for instance in instances:
                    await call_hook(instance.shutdown(), self._monitor, self._tags)
                await consumer.stop()
                # After leaving: an assignment that came while the consumer was stopping made
                # producers too (no revocation follows it).
                await self._transactions.close()
            self._monitor.emit("listener.stopped", **self._tags)

    def _new_consumer(self) -> ConsumerClient:
        group = self.group
        return self._context.clients.consumer(
            group.kafka_cluster,
            **{
                "client_id": self._context.client_id,
                **CONSUMER_DEFAULTS,
                **group.consumer_settings,
                "group_id": group.group_id,
                "enable_auto_commit": False,
                "auto_offset_reset": group.initial_offset,
            },
        )

    def _route(self, topic: RoutedTopic) -> RunningRoute:
        route = topic.route
        backoff = route.retry.as_backoff() if route.retry is not None else self._context.retry_backoff
        transient = route.retry.transient if route.retry is not None else ()
        policy = FailurePolicy(backoff, route.dead_letter_queue, transient)
        virtual = None
        if route.virtual_partitions is not None:
            virtual = Splitter(
                route.virtual_partitions,
                route.label,
                lambda: FailurePolicy(backoff, route.dead_letter_queue, transient),
            )
        flow = flow_of(route, self._context.clock, cluster=topic.cluster, decoder=topic.decoder)
        if route.consumer is None:
            assert route.handler is not None
            return RunningRoute(topic, route.handler, policy, None, virtual=virtual, flow=flow)
        instance = route.consumer()
        instance.bind(self._context.producers, topic.name, topic.cluster, self)
        return RunningRoute(topic, instance.consume, policy, instance, virtual=virtual, flow=flow)

    def _rebalance(self, consumer: ConsumerClient) -> Rebalance:
        return Rebalance(
            consumer,
            self._routes,
            monitor=self._monitor,
            tags=self._tags,
            in_flight=self._in_flight,
            offsets=self._offsets,
            pauses=self._pauses,
            failures=self._failures,
            transactions=self._transactions,
            revoke_timeout=self._context.revoke_timeout,
        )

    def _start_watches(self, consumer: ConsumerClient, background: anyio.abc.TaskGroup) -> None:
        interval, slow_after = self._context.statistics_interval, self._context.slow_batch_after
        if interval:
            background.start_soon(self._statistics.report, consumer, interval)
        if slow_after:
            background.start_soon(
                lambda: watch_slow_batches(
                    slow_after,
                    in_flight=self._in_flight,
                    pauses=self._pauses,
                    handlers=self._handlers,
                    monitor=self._monitor,
                    tags=self._tags,
                    held_up=self._set_aside_slow,
                )
            )

    # --- the poll loop -------------------------------------------------------------------

    async def _run_loop(self, consumer: ConsumerClient, token: object) -> None:
        self._loops += 1
        try:
            await self._loop(consumer, token)
        finally:
            self._loops -= 1
            if not self._loops:
                self._loops_ended.set()

    @property
    def poll_size(self) -> int:
        """The records one poll may hand over: the group's ``max_poll_records``, else
        ``max_messages`` x ``concurrency``, shared among the process's listeners. Alone, a
        listener has CPU to spare and big polls cost nothing; when several saturate one
        core, each big poll drained keeps the others' fetchers waiting (docs/performance.md,
        "Multi-cluster"). (A group with exactly-once topics polls by partition instead:
        ``_poll_spread``.)"""
        group, context = self.group, self._context
        if group.max_poll_records is not None:
            return group.max_poll_records
        return group.max_messages * max(1, context.concurrency // context.listeners)

    async def _loop(self, consumer: ConsumerClient, token: object) -> None:
        """Poll, process, commit, for as long as this loop is the poller (``token``)."""
        max_records = self.poll_size
        while not self._stopping and self._poller is token:
            records = await self._poll(consumer, max_records)
            if self._stopping or self._poller is not token:
                return  # a stop cancelled the poll (what it had fetched comes again next time)
            self.healthy = True
            if records:
                await self._process(consumer, records)
            else:
                await self._offsets.commit_skipped(consumer)

    async def _poll(self, consumer: ConsumerClient, max_records: int) -> Records:
        """The next records, or what a poll that failed on one partition read of the others."""
        records: Records = {}
        with anyio.CancelScope() as self._polling:
            try:
                if self._transactions.topics:
                    records = await self._poll_spread(consumer)
                else:
                    wait = self.group.max_wait_ms
                    records = await consumer.getmany(timeout_ms=wait, max_records=max_records)
            except Exception as error:
                failure = locate(error)
                if failure is None:
                    raise
                route = self._routes.get(failure.partition.topic)
                backoff = route.policy.backoff if route is not None else self._context.retry_backoff
                records = await self._failures.fetch_failed(consumer, failure, backoff)
            else:
                if records:
                    self._failures.fetched(records)
        self._polling = None
        return records

    async def _poll_spread(self, consumer: ConsumerClient) -> Records:
        """A share of each partition that has records at hand, up to ``concurrency``
        partitions: the poll of a group with exactly-once topics. aiokafka hands a backlog
        over partition by partition (one partition's fetched records all first), and a
        partition's transactions run one after another, each waiting for its commit; so
        without this a backlog is worked through one partition, one transaction, at a time.
        Partitions are taken longest-waiting first, so that a backlog's partitions progress
        together rather than some waiting until the others are done; only when none has
        records at hand does the poll wait for the consumer. A partition's share is what one
        of its transactions may cover (runtime/exactly_once.py): up to ``TRANSACTION_BATCHES``
        batches, or the route's ``max_poll_records``."""
        group = self.group
        size = group.max_poll_records or group.max_messages * TRANSACTION_BATCHES
        records = await self._at_hand(consumer, {}, size)
        if not records:
            records = await consumer.getmany(timeout_ms=group.max_wait_ms, max_records=size)
            if not records:
                return records
            records = await self._at_hand(consumer, records, size)  # the others join what came
        self._spread_polls += 1
        for tp in records:
            self._spread_taken[tp] = self._spread_polls
        return records

    async def _at_hand(self, consumer: ConsumerClient, records: Records, size: int) -> Records:
        """``records`` and up to ``size`` records of each partition that has them at hand,
        longest-waiting first, until ``concurrency`` partitions have some."""
        taken = self._spread_taken
        for tp in sorted(consumer.assignment() - consumer.paused(), key=lambda tp: taken.get(tp, 0)):
            if len(records) >= self._context.concurrency:
                break
            if tp not in records:
                records.update(await consumer.getmany(tp, timeout_ms=0, max_records=size))
        return records

    async def _process(self, consumer: ConsumerClient, records: Records) -> None:
        """One poll's records, partitions side by side, then one commit."""
        for tp, polled in records.items():
            self._offsets.handed(tp, polled[-1].offset + 1)
        try:
            self._in_flight.begin(records)
            # Each turn of the event loop the work waits for costs latency (other tasks' I/O
            # runs in between), so: the first partition runs in this task at once, the others
            # in tasks beside it, and the limiter (whose checkpoint is a turn) only when there
            # are more partitions than it lets run at a time.
            [(first, batch), *others] = records.items()
            bound = self._limiter if len(records) > self._context.concurrency else None
            if not others:  # the usual poll under load: nothing to run beside it
                await self._partition(consumer, first, batch, bound)
            else:
                await _together(
                    self._partition(consumer, first, batch, bound),
                    [self._partition(consumer, tp, more, bound) for tp, more in others],
                )
            await self._offsets.commit(consumer)
        finally:
            self._in_flight.forget(records)
            for tp in records:
                self._pauses.take_back(consumer, tp)

    async def _partition(
        self,
        consumer: ConsumerClient,
        tp: TopicPartition,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        limiter: anyio.CapacityLimiter | None,
    ) -> None:
        try:
            with anyio.CancelScope() as self._in_flight.scopes[tp]:
                await self._executor.run(consumer, tp, self._routes[tp.topic], records, limiter)
        finally:
            self._in_flight.finished(tp)

    def _set_aside_slow(self) -> None:
        """Leave the poll in hand to its loop and start a new poller beside it.

        The poll's unfinished partitions are paused, so that the new poller fetches only the
        others; the old loop ends after its poll (committing it), resuming them unless
        something else paused them meanwhile (a retry, the handler).
        """
        consumer, background = self._consumer, self._background
        if consumer is None or background is None:
            return
        for tp in self._in_flight.unfinished():
            self._pauses.set_aside(consumer, tp)
        self._poller = token = object()
        background.start_soon(self._run_loop, consumer, token)

    # --- PartitionControl, for Consumer.pause / resume / seek / mark_as_consumed / is_revoked

    def current(self, topic: str, partition: int) -> Messages[Any] | None:
        return self._in_flight.current.get(TopicPartition(topic, partition))

    def request(self, topic: str, partition: int, action: AfterBatch) -> None:
        tp = TopicPartition(topic, partition)
        batch = self._in_flight.current.get(tp)
        if batch is not None:  # that partition's handler is running: act when it returns
            batch.after_batch = None if action[0] == "resume" else action
            if action[0] != "resume":
                return
        consumer, background = self._consumer, self._background
        if consumer is None or background is None:
            raise RuntimeError(f"the listener for {topic} is not running")
        if tp not in consumer.assignment():
            raise ValueError(f"partition {partition} of {topic!r} is not assigned to this consumer")
        background.start_soon(lambda: self._pauses.apply(consumer, tp, action, next_offset=None))

    def is_revoked(self, topic: str, partition: int) -> bool:
        return TopicPartition(topic, partition) in self._in_flight.revoked

    # --- for a stop, and the loop watchdog -----------------------------------------------

    def in_hand(self) -> list[InHand]:
        """The batches handlers hold now (read-only; the loop watchdog calls it from its thread)."""
        return self._in_flight.in_hand(self.group.cluster, self._handlers)

    async def leave(self) -> None:
        """Close the consumer, leaving the group, while a handler still holds a batch: what a
        stop that gave up on handlers ignoring cancellation does, so that their partitions
        go to another member instead of staying with a task that will not end."""
        if self._consumer is not None:
            await self._consumer.stop()
