"""A Listener: one subscription group's consumer loop (poll, process per partition, commit).

Each poll's records are split per partition and handed to the handlers in offset order,
partitions concurrently up to a bound, one partition never concurrently with itself.
Offsets are committed once per poll, only for batches whose handler returned. A batch that
fails rewinds and pauses only its own partition; it is tried again after a backoff while
the other partitions keep flowing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from aiostream_kafka.consumer import Consumer
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.messages import Message, Messages
from aiostream_kafka.routing.topology import SubscriptionGroup, Topic
from aiostream_kafka.runtime.backoff import Backoff

if TYPE_CHECKING:
    from aiostream_kafka.app import App

Invoke = Callable[[Messages[Any]], Awaitable[None]]

#: How long the cleanup after a stop (hooks, last commit, leaving the group) may take.
CLOSE_TIMEOUT = 15.0


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
    ) -> None:
        self.group = group
        self._app = app
        self._monitor = monitor
        self._client_id = client_id
        self._concurrency = concurrency
        self._retry_backoff = retry_backoff
        self._topics = {topic.name: topic for topic in group.topics}
        self._tags = {
            "cluster": group.cluster.name,
            "group": group.group_id,
            "subscription_group": group.name,
        }
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self._in_batch = False
        #: Held while a poll's batches are processed and committed; a revoke waits for it.
        self._processing = anyio.Lock()
        self._attempts: dict[TopicPartition, int] = {}
        self._done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        #: Set once the listener has polled; the Supervisor uses it to reset its backoff.
        self.healthy = False

    def request_stop(self) -> None:
        """Stop after the batches in hand; a listener waiting on Kafka stops at once."""
        self._stopping = True
        if self._scope is not None and not self._in_batch:
            self._scope.cancel()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **{
                "client_id": self._client_id,
                **self.group.cluster.settings.connection_kwargs(),
                **self.group.consumer_settings,
                "group_id": self.group.group_id,
                "enable_auto_commit": False,
                "auto_offset_reset": self.group.initial_offset,
            }
        )
        instances, invokers = self._handlers()
        self._attempts.clear()
        self._done.clear()
        try:
            with anyio.CancelScope() as self._scope:
                if self._stopping:
                    self._scope.cancel()
                consumer.subscribe(list(self._topics), listener=_RebalanceListener(self, consumer, instances))
                await consumer.start()
                for instance in instances.values():
                    await instance.on_start()
                self._monitor.emit("listener.started", **self._tags, topics=list(self._topics))
                async with anyio.create_task_group() as resumes:
                    await self._loop(consumer, invokers, resumes)
                    resumes.cancel_scope.cancel()
        finally:
            self._scope = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await self._commit(consumer)
                for instance in instances.values():
                    await _quietly(instance.shutdown(), self._monitor, self._tags)
                await consumer.stop()
            self._monitor.emit("listener.stopped", **self._tags)

    def _handlers(self) -> tuple[dict[str, Consumer], dict[str, Invoke]]:
        instances: dict[str, Consumer] = {}
        invokers: dict[str, Invoke] = {}
        for topic in self.group.topics:
            route = topic.route
            if route.consumer is not None:
                instance = route.consumer()
                instance.bind(self._app, topic.name, topic.cluster.name)
                instances[topic.name] = instance
                invokers[topic.name] = instance.consume
            else:
                assert route.handler is not None
                invokers[topic.name] = route.handler
        return instances, invokers

    async def _loop(
        self, consumer: AIOKafkaConsumer, invokers: dict[str, Invoke], resumes: anyio.abc.TaskGroup
    ) -> None:
        limiter = anyio.CapacityLimiter(self._concurrency)
        max_records = self.group.max_messages * self._concurrency
        while not self._stopping:
            records = await consumer.getmany(timeout_ms=self.group.max_wait_ms, max_records=max_records)
            self.healthy = True
            if not records:
                continue
            self._in_batch = True
            try:
                async with self._processing:
                    async with anyio.create_task_group() as partitions:
                        for tp, batch in records.items():
                            partitions.start_soon(
                                self._process_partition, consumer, tp, batch, invokers, limiter, resumes
                            )
                    await self._commit(consumer)
            finally:
                self._in_batch = False

    async def _process_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        invokers: dict[str, Invoke],
        limiter: anyio.CapacityLimiter,
        resumes: anyio.abc.TaskGroup,
    ) -> None:
        topic = self._topics[tp.topic]
        size = self.group.max_messages
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            attempt = self._attempts.get(tp, 0) + 1
            messages = _messages(topic, tp, chunk, attempt)
            where = {**self._tags, "topic": tp.topic, "partition": tp.partition}
            self._monitor.emit("batch.received", **where, count=len(chunk), first_offset=chunk[0].offset)
            began = time.perf_counter()
            async with limiter:
                try:
                    await invokers[tp.topic](messages)
                except Exception as error:
                    self._retry_later(consumer, tp, chunk[0].offset, attempt, error, where, resumes)
                    return
            self._attempts.pop(tp, None)
            self._done[tp] = chunk[-1].offset + 1
            self._monitor.emit(
                "batch.processed",
                **where,
                count=len(chunk),
                first_offset=chunk[0].offset,
                last_offset=chunk[-1].offset,
                duration=time.perf_counter() - began,
            )

    def _retry_later(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        offset: int,
        attempt: int,
        error: Exception,
        where: dict[str, Any],
        resumes: anyio.abc.TaskGroup,
    ) -> None:
        """Rewind the partition to the failed batch and pause only it for a while."""
        self._attempts[tp] = attempt
        delay = self._retry_backoff.delay(attempt)
        self._monitor.emit("batch.failed", **where, offset=offset, attempt=attempt, error=error)
        consumer.seek(tp, offset)
        consumer.pause(tp)
        self._monitor.emit("retry.scheduled", **where, offset=offset, attempt=attempt + 1, delay=delay)
        resumes.start_soon(self._resume_later, consumer, tp, delay)

    async def _resume_later(self, consumer: AIOKafkaConsumer, tp: TopicPartition, delay: float) -> None:
        await anyio.sleep(delay)
        if tp in consumer.assignment():
            consumer.resume(tp)

    async def _commit(self, consumer: AIOKafkaConsumer, only: Iterable[TopicPartition] | None = None) -> None:
        partitions = set(self._done) if only is None else set(only) & set(self._done)
        if not partitions:
            return
        offsets = {tp: self._done.pop(tp) for tp in partitions}
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:
            # The group moved on (or the cluster is away): whoever owns these partitions next
            # starts from the last commit and sees these messages again; at-least-once holds.
            self._monitor.emit("error.occurred", **self._tags, type="commit", error=error)
            return
        self._monitor.emit(
            "offsets.committed",
            **self._tags,
            offsets={f"{tp.topic}/{tp.partition}": offset for tp, offset in offsets.items()},
        )

    async def on_revoked(
        self, consumer: AIOKafkaConsumer, revoked: set[TopicPartition], instances: dict[str, Consumer]
    ) -> None:
        """Let the batch in hand finish, commit what is done for ``revoked``, then tell the consumers."""
        async with self._processing:
            await self._commit(consumer, only=revoked)
            for tp in revoked:
                self._attempts.pop(tp, None)
            for topic, instance in instances.items():
                partitions = sorted(tp.partition for tp in revoked if tp.topic == topic)
                if partitions:
                    await _quietly(instance.revoked(partitions), self._monitor, self._tags)
        self._monitor.emit("partitions.revoked", **self._tags, partitions=_names(revoked))


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, listener: Listener, consumer: AIOKafkaConsumer, instances: dict[str, Consumer]
    ) -> None:
        self._listener = listener
        self._consumer = consumer
        self._instances = instances

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self._listener.on_revoked(self._consumer, revoked, self._instances)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        listener = self._listener
        listener._monitor.emit("partitions.assigned", **listener._tags, partitions=_names(assigned))


def _messages(
    topic: Topic, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]], attempt: int
) -> Messages[Any]:
    cluster = topic.cluster.name
    decoder = topic.decoder
    return Messages(
        [
            Message(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                raw_headers=r.headers,
                timestamp_ms=r.timestamp,
                cluster=cluster,
                decoder=decoder,
            )
            for r in records
        ],
        topic=tp.topic,
        partition=tp.partition,
        cluster=cluster,
        attempt=attempt,
    )


def _names(partitions: Iterable[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


async def _quietly(hook: Awaitable[None], monitor: Monitor, tags: dict[str, str]) -> None:
    """Run a user hook whose failure must not stop the listener; report it instead."""
    try:
        await hook
    except Exception as error:
        monitor.emit("error.occurred", **tags, type="consumer.hook", error=error)
