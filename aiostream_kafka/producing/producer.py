"""A cluster's producer: msgspec encoding and Monitor events around one ``AIOKafkaProducer``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import anyio
import msgspec
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from aiostream_kafka.codecs import Encoder
from aiostream_kafka.config import Cluster
from aiostream_kafka.diagnosis import connection_error
from aiostream_kafka.errors import ClusterConnectionError, ConfigError, NotRunningError, TransactionError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.producing import transactions
from aiostream_kafka.producing.batching import (
    BATCH_HEADER,
    NO_HEADERS,
    SIZE_SLACK,
    Filling,
    OpenBatch,
    Produced,
    RecordHeaders,
    key_hash,
    too_large,
)
from aiostream_kafka.producing.deliveries import report_sent
from aiostream_kafka.producing.direct import DirectSend
from aiostream_kafka.producing.failures import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_REQUEST_SIZE,
    KAFKA_FAILURES,
    invalid_topic,
    no_such_partition,
    produce_failure,
)
from aiostream_kafka.producing.transactions import InTransaction, transaction_failure
from aiostream_kafka.runtime.clients import KafkaClients, ProducerClient
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.reachability import client_of
from aiostream_kafka.topic_names import is_topic_name

Headers = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]

#: How many valid topic names a producer remembers; past that, the others are checked each time.
KNOWN_TOPICS = 10_000
_CONNECT_FAILURES = (ClusterConnectionError, *KAFKA_FAILURES)


class ProducerRecord(msgspec.Struct, frozen=True, gc=False):
    """One message for ``produce_many``: immutable, compared by value.

    A msgspec Struct, whose constructor is C (one is made a message; docs/performance.md):
    ``msgspec.structs.replace`` / ``asdict`` are its ``dataclasses.replace`` / ``asdict``.
    Not tracked by the garbage collector (``gc=False``): a million records in hand would
    otherwise be scanned again and again while they are sent. The one thing this rules out
    is a record that its own value (or headers) refers back to: such a cycle is never freed.
    """

    topic: str
    value: Any = None
    key: Any = None
    headers: Headers | None = None
    partition: int | None = None
    timestamp_ms: int | None = None


class Producer:
    """Connects on start (or on first use if the cluster was down then); flushes on stop.

    A message that is not produced raises ``ProduceError`` (caused by aiokafka's error) naming
    the cluster and the topic; a topic name no broker accepts is refused before anything is
    sent, where aiokafka would wait ``request_timeout_ms`` for its metadata.
    """

    def __init__(
        self,
        cluster: Cluster,
        monitor: Monitor,
        *,
        client_id: str,
        format: str = "json",
        clients: KafkaClients | None = None,
        overrides: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        #: The cluster's name; its ``Cluster`` (name and settings) is what this connects with.
        self.cluster = cluster.name
        self._kafka_cluster = cluster
        self._clients = clients or KafkaClients()
        self._overrides = dict(overrides or {})  # on top of the cluster's producer settings
        self._monitor = monitor
        self._clock = clock or Clock()  # what batches it builds are stamped with
        self._client_id = client_id
        self._encoder = Encoder(format)
        self._kafka: ProducerClient | None = None
        self._direct: DirectSend | None = None  # past aiokafka's send, when it can be (direct.py)
        self._lock = anyio.Lock()
        self._closed = False
        self._server = cluster.settings.bootstrap_servers[0]
        self._topics: set[str] = set()  # names found valid: a valid topic costs one lookup a send
        settings = {**cluster.settings.producer_kwargs(), **self._overrides}
        self._max_request_size = int(settings.get("max_request_size", DEFAULT_MAX_REQUEST_SIZE))
        # A record over max_request_size is then always alone in its batch, so it can be left
        # out of what is sent; aiokafka itself lets a larger max_batch_size build requests
        # over max_request_size, so those settings keep produce_many on send.
        batch_size = int(settings.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE))
        self._batching = batch_size <= self._max_request_size
        self._next_partition: dict[str, int] = {}  # by topic: where its next keyless batch goes
        #: Set by the registry when the app has transactions: then each send first looks for
        #: the transaction its task is in (``producing.transactions``); otherwise it never does.
        self.follows_transactions = False
        self.transactional_id: str | None = settings.get("transactional_id")
        self._transaction_lock = anyio.Lock()  # aiokafka runs one transaction at a time
        self._fenced: TransactionError | None = None  # then aiokafka's producer is done for

    @property
    def connected(self) -> bool:
        """Whether the client has connected (readiness asks; a cluster down at start makes it False)."""
        return self._kafka is not None

    async def start(self) -> None:
        await self._connection()

    async def _connection(self) -> ProducerClient:
        if self._kafka is not None:
            return self._kafka
        async with self._lock:
            if self._closed:
                raise NotRunningError(f"the producer for cluster {self.cluster!r} is stopped")
            if self._kafka is None:
                settings = {
                    "client_id": self._client_id,
                    **self._kafka_cluster.settings.producer_kwargs(),
                    **self._overrides,
                }
                kafka = self._clients.producer(self._kafka_cluster, **settings)
                try:
                    with client_of(self.cluster):  # its sender task says whose it is
                        await kafka.start()
                except BaseException as error:
                    with anyio.CancelScope(shield=True):
                        await kafka.stop()
                    if isinstance(error, KafkaConnectionError):
                        raise await connection_error(self._kafka_cluster, error) from error
                    raise
                self._direct = DirectSend.of(kafka)
                report_sent(kafka, self.cluster, self._monitor)
                self._kafka = kafka
        return self._kafka

    async def _connected(self, topic: str) -> ProducerClient:
        """The connected client, for a send to ``topic``: a failure to connect names it."""
        try:
            return await self._connection()
        except _CONNECT_FAILURES as error:
            self._raise(topic, error, None)

    def _check_topic(self, topic: str) -> None:
        """Refuse a name no broker accepts; remember the good ones."""
        if not is_topic_name(topic):
            self._raise(topic, invalid_topic(self._kafka_cluster, topic), None)
        if len(self._topics) < KNOWN_TOPICS:
            self._topics.add(topic)

    async def produce(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        """Send one message and wait until the broker has it; else raise ``ProduceError``."""
        if self.follows_transactions and (inside := transactions.current()) and inside.producer is not self:
            into = transactions.redirected(inside, self.cluster, topic)
            return await into.produce(
                topic, value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
            )
        if topic not in self._topics:
            self._check_topic(topic)
        delivery, context = await self._send(topic, value, key, headers, partition, timestamp_ms)
        try:
            metadata = await delivery
        except Exception as error:
            self._raise(topic, error, context, (value, key, headers))
        self._delivered(topic, metadata, context)
        return metadata

    async def produce_nowait(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue one message; the returned future resolves when the broker has it.

        Waits only while the producer's buffer is full, so many sends can be in flight. What
        the call itself raises (an invalid topic name, a message over ``max_request_size``, a
        full buffer) is a ``ProduceError`` naming the cluster and topic. The future is
        aiokafka's own, untouched (wrapping it would cost every message): it carries the
        ``RecordMetadata``, or aiokafka's error for a message the broker did not take, which
        names no topic. ``message.produced`` / ``produce.failed`` (whose error is a
        ``ProduceError``) follow for it only while something observes each message (a
        delivery callback per message is costly); its future always tells.
        """
        if self.follows_transactions and (inside := transactions.current()) and inside.producer is not self:
            into = transactions.redirected(inside, self.cluster, topic)
            return await into.produce_nowait(
                topic, value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
            )
        if topic not in self._topics:
            self._check_topic(topic)
        kafka, heard = self._kafka, self._monitor.heard
        if kafka is None or headers or "message.producing" in heard or "message.produced" in heard:
            return await self._produce_watched(topic, value, key, headers, partition, timestamp_ms)
        # The hot path: nothing to add to the message and nobody watching each one. Straight
        # to aiokafka's accumulator when it can be (direct.py), else its send; no closure here
        # (its cells would be made on every call, used or not).
        if type(value) is not bytes and value is not None:
            value = self._encoder.value(value)
        if type(key) is not bytes and key is not None:
            key = Encoder.key(key)
        direct = self._direct
        try:
            if direct is not None:
                queued = direct.send(topic, value, key, partition, timestamp_ms)
                if queued is not None:
                    return await queued
                delivery = await kafka.send(topic, value, key, partition, timestamp_ms)
                direct.known.add(topic)
                return delivery
            return await kafka.send(topic, value, key, partition, timestamp_ms)
        except Exception as error:
            self._raise(topic, error, None, (value, key, None), partition)

    async def _produce_watched(
        self,
        topic: str,
        value: Any,
        key: Any,
        headers: Headers | None,
        partition: int | None,
        timestamp_ms: int | None,
    ) -> asyncio.Future[RecordMetadata]:
        delivery, context = await self._send(topic, value, key, headers, partition, timestamp_ms)
        if self._monitor.listens_to("message.produced"):
            delivery.add_done_callback(lambda done: self._report(topic, done, context))
        return delivery

    async def produce_many(self, records: Iterable[ProducerRecord]) -> Sequence[RecordMetadata]:
        """Send many messages in flight at once and wait for all of them; returns each one's
        metadata in input order (a sequence, its items made when read; None with ``acks=0``).

        Raises the first failure (a ``ProduceError``), after every message has been accounted
        for; an invalid topic name among them, before any is sent. Builds its own batches,
        one per partition at a time (``batch.producing`` / ``batch.produced`` per batch; the
        OpenTelemetry listener's span a batch), unless something subscribed by name to a
        per-message event and not to ``batch.producing``: then each message goes through
        ``send`` (such a ``message.producing`` subscriber may add headers to each, and
        expects ``message.produced`` for each).
        """
        records = records if isinstance(records, list | tuple) else list(records)
        inside = transactions.current() if self.follows_transactions and records else None
        if inside is not None and inside.producer is not self:
            into = transactions.redirected(inside, self.cluster, records[0].topic)
            return await into.produce_many(records)
        known = self._topics
        for r in records:  # all of them first, so that a bad name sends nothing
            if r.topic not in known:
                self._check_topic(r.topic)
        if not records or not self._batching or self._monitor.per_message:
            return await self._produce_each(records)
        kafka = self._kafka or await self._connected(records[0].topic)
        return await self._produce_batched(kafka, records)

    async def _produce_each(self, records: Sequence[ProducerRecord]) -> list[RecordMetadata]:
        """``produce_many`` one ``send`` a message."""
        # Every send only appends to aiokafka's buffer (it waits only while that is full), so
        # all of them are queued before any delivery is awaited, never one send per round
        # trip (aio-libs/aiokafka#1065). The deliveries are then taken in order: those of one
        # broker batch resolve together, so this waits about once per batch, where gather()
        # would put a callback on every message (the wake-ups of aio-libs/aiokafka#528).
        kafka = self._kafka
        monitor, encode_value, encode_key = self._monitor, self._encoder.value, Encoder.key
        deliveries: list[asyncio.Future[RecordMetadata]] = []
        sent: list[ProducerRecord] = []
        contexts: dict[int, dict[str, Any]] = {}  # by position, for the messages that have one
        for r in records:
            topic, value, key = r.topic, r.value, r.key
            if kafka is None:  # connected on first use, as every send is (nothing to send: no need)
                kafka = await self._connected(topic)
            if r.headers or "message.producing" in monitor.heard:
                delivery, context = await self._send(
                    topic, value, key, r.headers, r.partition, r.timestamp_ms
                )
                if context is not None:
                    contexts[len(deliveries)] = context
            else:  # the hot path of produce_nowait, inline
                if type(value) is not bytes and value is not None:
                    value = encode_value(value)
                if type(key) is not bytes and key is not None:
                    key = encode_key(key)
                try:
                    delivery = await self._append(kafka, topic, value, key, r.partition, r.timestamp_ms)
                except Exception as error:
                    self._raise(topic, error, None, (value, key, None))
            deliveries.append(delivery)
            sent.append(r)
        for delivery in deliveries:
            if not delivery.done():
                await asyncio.wait((delivery,))  # never raises the delivery's own error
        try:
            results: list[RecordMetadata] | None = [delivery.result() for delivery in deliveries]
        except BaseException:  # a delivery failed or was cancelled (never this task: all are done)
            results = None
        if results is None:
            self._account(deliveries, sent, contexts)
        if "message.produced" in monitor.heard:
            for i, metadata in enumerate(results):
                self._delivered(sent[i].topic, metadata, contexts.get(i))
        return results

    async def _produce_batched(self, kafka: ProducerClient, records: Sequence[ProducerRecord]) -> Produced:
        """``produce_many`` through batches it builds: keyed records on the Java client's
        partition, keyless ones a batch at a time on each partition in turn, an explicit
        partition honoured; a full batch is sent (so ``max_batch_size`` holds) and another
        begun. Kept in one loop, as the per-message path is: a call per message costs, and so
        does each object kept for a message (docs/performance.md); what is rare (a batch to
        open or send, a record with a timestamp of its own) goes through ``_place``."""
        encode_value, encode_key, encode_headers = self._encoder.value, Encoder.key, Encoder.headers
        filling = Filling()
        opened, counts, keyless, hashes = filling.opened, filling.counts, filling.keyless, filling.hashes
        batch_of: list[OpenBatch] = []  # each message's batch, all that is kept for it
        in_batch = batch_of.append
        last_topic, in_topic = None, {}  # records mostly go to one topic: its batches at hand
        for r in records:
            topic = r.topic
            value = r.value
            key = r.key
            partition = r.partition
            headers = r.headers
            if type(value) is not bytes and value is not None:
                value = encode_value(value)
            if type(key) is not bytes and key is not None:
                key = encode_key(key)
            headers = (encode_headers(headers) or None) if headers else None
            if partition is None:
                count = counts.get(topic) or await self._partition_count(kafka, topic, counts)
                if key is None:
                    partition = keyless.get(topic)
                    if partition is None:
                        partition = keyless[topic] = self._keyless_partition(topic, count)
                else:
                    hashed = hashes.get(key)
                    if hashed is None:
                        hashed = hashes[key] = key_hash(key)
                    partition = hashed % count
            if topic is not last_topic:  # by topic, then partition: no tuple a message
                in_topic = opened.get(topic) or opened.setdefault(topic, {})
                last_topic = topic
            batch = in_topic.get(partition)
            if (
                batch is None
                or r.timestamp_ms is not None
                or (headers is not None and batch.headers)  # its own and the batch's (trace context)
                or batch.append(batch.count, batch.stamp, key, value, headers or batch.headers) is None
            ):
                batch = await self._place(kafka, filling, r, partition, value, key, headers)
            batch.count += 1
            in_batch(batch)
        for batch in [batch for in_topic in opened.values() for batch in in_topic.values()]:
            await self._ship(kafka, filling, batch)
        for batch in filling.sent:
            if batch.delivery is not None and not batch.delivery.done():
                await asyncio.wait((batch.delivery,))  # never raises the delivery's own error
        if self._settle(filling.sent) or filling.refused:
            self._raise_first_failure(batch_of)
        return Produced(batch_of)

    async def _partition_count(self, kafka: ProducerClient, topic: str, counts: dict[str, int]) -> int:
        try:
            count = counts[topic] = len(await kafka.partitions_for(topic))
        except Exception as error:
            self._raise(topic, error, None)
        return count

    def _keyless_partition(self, topic: str, count: int) -> int:
        """The next partition for ``topic``'s keyless records: each batch of them on the next."""
        partition = self._next_partition.get(topic, 0) % count
        self._next_partition[topic] = partition + 1
        return partition

    async def _place(
        self,
        kafka: ProducerClient,
        filling: Filling,
        record: ProducerRecord,
        partition: int,
        value: bytes | None,
        key: bytes | None,
        headers: RecordHeaders | None,
    ) -> OpenBatch:
        """Put a record (encoded) in a batch of ``partition``: its open one if it has room,
        else a new one (the full one sent first; a keyless record's on the next partition)."""
        topic, timestamp = record.topic, record.timestamp_ms
        in_topic = filling.opened[topic]
        batch = in_topic.get(partition)
        if batch is not None and timestamp is not None and batch.add(timestamp, key, value, headers):
            return batch  # a timestamp of its own, and room in its partition's open batch
        if batch is not None:  # full
            await self._ship(kafka, filling, batch)
            if key is None and record.partition is None:  # keyless: on to the next partition
                partition = filling.keyless[topic] = self._keyless_partition(topic, filling.counts[topic])
                batch = in_topic.get(partition)
                if batch is not None:
                    if batch.add(timestamp, key, value, headers):
                        return batch
                    await self._ship(kafka, filling, batch)
        stamp = int(self._clock.now() * 1000)
        batch = OpenBatch(topic, partition, kafka.create_batch(), (value, key, headers), stamp)
        in_topic[partition] = batch
        if self._monitor.listens_to("batch.producing"):
            self._announce(batch)
        appended = batch.add(timestamp, key, value, headers)
        assert appended is not None, "an empty batch takes any record"
        # Only a record alone in its batch can be over max_request_size (max_batch_size is
        # not over it: self._batching), so only those are measured.
        if appended.size > self._max_request_size - BATCH_HEADER - SIZE_SLACK:
            self._leave_out(filling, batch, value, key, headers)
        return batch

    def _announce(self, batch: OpenBatch) -> None:
        """``batch.producing``: its subscribers may give the batch's records headers (the
        OpenTelemetry listener its span's trace context) and keep state in its context."""
        headers: list[tuple[str, bytes | None]] = []
        batch.context = {}
        self._monitor.emit(
            "batch.producing",
            cluster=self.cluster,
            topic=batch.topic,
            partition=batch.partition,
            server=self._server,
            headers=headers,
            context=batch.context,
        )
        batch.headers = headers or NO_HEADERS

    async def _ship(self, kafka: ProducerClient, filling: Filling, batch: OpenBatch) -> None:
        """Hand ``batch`` to aiokafka (it waits while the partition's previous one is queued)."""
        del filling.opened[batch.topic][batch.partition]
        batch.close()
        try:
            batch.delivery = await kafka.send_batch(batch.builder, batch.topic, partition=batch.partition)
        except Exception as error:
            self._raise(batch.topic, error, None, batch.first, batch.partition)
        filling.sent.append(batch)

    def _leave_out(
        self,
        filling: Filling,
        batch: OpenBatch,
        value: bytes | None,
        key: bytes | None,
        headers: RecordHeaders | None,
    ) -> None:
        """A record near ``max_request_size``, alone in ``batch``: over it (as aiokafka's
        ``send`` measures), it fails as ``send`` would have, and its batch is never sent."""
        size = self._size_of(value, key, headers)
        if size <= self._max_request_size:
            return
        del filling.opened[batch.topic][batch.partition]
        batch.failure = self._failed(batch.topic, too_large(size), None, (value, key, headers))
        filling.refused.append(batch)

    def _settle(self, sent: list[OpenBatch]) -> bool:
        """``batch.produced`` for each batch delivered, ``produce.failed`` for each not (True
        if any failed)."""
        produced = self._monitor.listens_to("batch.produced")
        failed = False
        for batch in sent:
            batch.release()
            delivery = batch.delivery
            assert delivery is not None
            error = delivery.exception() if not delivery.cancelled() else asyncio.CancelledError()
            if error is not None:
                failed = True
                batch.failure = self._failed(
                    batch.topic,
                    error,
                    batch.context,
                    batch.first,
                    partition=batch.partition,
                    count=batch.count,
                )
            elif produced:
                metadata = delivery.result()
                self._monitor.emit(
                    "batch.produced",
                    cluster=self.cluster,
                    topic=batch.topic,
                    partition=batch.partition,
                    count=batch.count,
                    base_offset=None if metadata is None else metadata.offset,
                    context=batch.context,
                )
        return failed

    @staticmethod
    def _raise_first_failure(batches: list[OpenBatch]) -> NoReturn:
        """Raise the failure of the first message (in input order) whose batch failed."""
        failure = next(batch.failure for batch in batches if batch.failure is not None)
        raise failure

    def _account(
        self,
        deliveries: list[asyncio.Future[RecordMetadata]],
        sent: list[ProducerRecord],
        contexts: dict[int, dict[str, Any]],
    ) -> NoReturn:
        """Report every message of a ``produce_many`` that did not all succeed, then raise the
        first failure."""
        failure: BaseException | None = None
        for i, delivery in enumerate(deliveries):
            r = sent[i]
            error = delivery.exception() if not delivery.cancelled() else asyncio.CancelledError()
            if error is not None:
                failed = self._failed(r.topic, error, contexts.get(i), (r.value, r.key, r.headers))
                failure = failure or failed
            else:
                self._delivered(r.topic, delivery.result(), contexts.get(i))
        assert failure is not None
        raise failure

    async def _send(
        self,
        topic: str,
        value: Any,
        key: Any,
        headers: Headers | None,
        partition: int | None,
        timestamp_ms: int | None,
    ) -> tuple[asyncio.Future[RecordMetadata], dict[str, Any] | None]:
        kafka = self._kafka
        if kafka is None:
            kafka = await self._connected(topic)
        value, key = self._encoder.value(value), Encoder.key(key)
        encoded_headers = Encoder.headers(headers) if headers else None
        context: dict[str, Any] | None = None
        if self._monitor.listens_to("message.producing"):
            # Subscribers may add headers (trace context) and keep state for this send in context.
            encoded_headers = encoded_headers or []
            context = {}
            self._monitor.emit(
                "message.producing",
                cluster=self.cluster,
                topic=topic,
                partition=partition,
                server=self._server,
                headers=encoded_headers,
                context=context,
            )
        try:
            delivery = await self._append(kafka, topic, value, key, partition, timestamp_ms, encoded_headers)
        except Exception as error:
            self._raise(topic, error, context, (value, key, headers), partition)
        return delivery, context

    async def _append(
        self,
        kafka: ProducerClient,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        timestamp_ms: int | None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """One message to aiokafka: past its ``send`` when it can be (direct.py).
        ``produce_nowait`` does the same inline: a coroutine between costs every message."""
        direct = self._direct
        if direct is not None and not headers:
            queued = direct.send(topic, value, key, partition, timestamp_ms)
            if queued is not None:
                return await queued
        delivery: asyncio.Future[RecordMetadata] = await kafka.send(
            topic, value, key=key, headers=headers or None, partition=partition, timestamp_ms=timestamp_ms
        )
        if direct is not None:
            direct.known.add(topic)
        return delivery

    def _report(
        self, topic: str, delivery: asyncio.Future[RecordMetadata], context: dict[str, Any] | None
    ) -> None:
        if delivery.cancelled():
            return
        error = delivery.exception()
        if error is not None:
            self._failed(topic, error, context)
        else:
            self._delivered(topic, delivery.result(), context)

    def _delivered(self, topic: str, metadata: RecordMetadata, context: dict[str, Any] | None) -> None:
        if self._monitor.listens_to("message.produced"):
            self._monitor.emit(
                "message.produced",
                cluster=self.cluster,
                topic=topic,
                partition=metadata.partition,
                offset=metadata.offset,
                context=context,
            )

    def _failed(
        self,
        topic: str,
        error: BaseException,
        context: dict[str, Any] | None,
        message: tuple[Any, Any, Headers | None] | None = None,
        **batch: int,
    ) -> BaseException:
        """Report a send that failed (``produce.failed``); return the error to raise for it.

        ``message`` (value, key, headers) sizes a message too large, on this path only;
        ``batch`` (partition, count) tells a whole batch of ``produce_many`` failed.
        """
        size = (lambda: self._size_of(*message)) if message is not None else None
        failure = produce_failure(
            self._kafka_cluster, topic, error, size=size, max_request_size=self._max_request_size
        )
        self._monitor.emit(
            "produce.failed", cluster=self.cluster, topic=topic, error=failure, context=context, **batch
        )
        return failure

    def _raise(
        self,
        topic: str,
        error: BaseException,
        context: dict[str, Any] | None,
        message: tuple[Any, Any, Headers | None] | None = None,
        partition: int | None = None,
    ) -> NoReturn:
        """Report a send that failed, then raise what says why: caused by ``error``, or itself.
        ``partition``: the one the caller asked for, if any."""
        if partition is not None:
            known = self._partitions_of(topic)
            error = no_such_partition(self._kafka_cluster, topic, partition, error, known)
        failure = self._failed(topic, error, context, message)
        if failure is error:
            raise error
        raise failure from error

    def _partitions_of(self, topic: str) -> set[int] | None:
        """The topic's partitions as aiokafka last saw them (None if it cannot say)."""
        metadata = getattr(self._kafka, "_metadata", None)
        partitions: set[int] | None = getattr(metadata, "partitions_for_topic", lambda topic: None)(topic)
        return partitions

    def _size_of(self, value: Any, key: Any, headers: Headers | None) -> int:
        """A message's encoded size, as aiokafka measures it against ``max_request_size``."""
        encoded_headers = Encoder.headers(headers) or []
        return int(
            DefaultRecordBatchBuilder.estimate_size_in_bytes(
                Encoder.key(key), self._encoder.value(value), encoded_headers
            )
        )

    # --- transactions ---------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Producer]:
        """Everything produced inside commits together, or not at all (then it raises).

        Needs ``transactional_id`` in the cluster's settings (one per process: a second
        producer with the same id fences the first). Sends through any producer of this
        cluster inside the block are part of the transaction; through another cluster's,
        refused (``CrossClusterTransactionError``). Nothing of an aborted transaction is
        visible to read-committed consumers. One transaction at a time per producer.
        """
        transactional_id = self.transactional_id
        if transactional_id is None:
            raise ConfigError(
                f"the producer of cluster {self.cluster!r} is not transactional: give the cluster a "
                f"transactional_id in its settings (App(clusters={{{self.cluster!r}: {{..., "
                f"'transactional_id': 'my-app-1'}}}})) to use transactions"
            )
        async with self._transaction_lock:
            tags = {"cluster": self.cluster, "transactional_id": transactional_id}
            await self.begin_transaction()
            began = time.perf_counter()
            self._monitor.emit("transaction.begun", **tags)
            owner = f"app.producers[{self.cluster!r}].transaction()"
            token = transactions.enter(InTransaction(self, owner))
            try:
                yield self
            except BaseException as error:
                with anyio.CancelScope(shield=True):
                    await self._abort_reporting(error, tags)
                raise
            finally:
                transactions.leave(token)
            try:
                await self.commit_transaction()
            except BaseException as error:
                with anyio.CancelScope(shield=True):
                    await self._abort_reporting(error, tags)
                raise
            self._monitor.emit("transaction.committed", **tags, duration=time.perf_counter() - began)

    async def _abort_reporting(self, error: BaseException, tags: dict[str, Any]) -> None:
        """Abort after ``error`` and say so; a failure to abort is reported, never raised over it."""
        try:
            await self.abort_transaction()
        except Exception as abort_error:
            self._monitor.emit("error.occurred", **tags, type="transaction.abort", error=abort_error)
        self._monitor.emit("transaction.aborted", **tags, error=error)

    async def begin_transaction(self) -> None:
        """Open a transaction (connecting first, which fences older producers of the same id)."""
        kafka = await self._transactional()
        try:
            await kafka.begin_transaction()
        except Exception as error:
            raise self._transaction_failure(error, "begin") from error

    async def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_id: str) -> None:
        """Commit consumer offsets (``{TopicPartition: next offset}``) for ``group_id`` with the
        open transaction: they count only if it commits."""
        kafka = await self._transactional()
        try:
            await kafka.send_offsets_to_transaction(dict(offsets), group_id)
        except Exception as error:
            raise self._transaction_failure(error, "add offsets to") from error

    async def commit_transaction(self) -> None:
        """Deliver what is in flight, then commit it all; a failure raises ``TransactionError``
        and leaves the transaction to abort."""
        kafka = await self._transactional()
        try:
            await kafka.commit_transaction()
        except Exception as error:
            raise self._transaction_failure(error, "commit") from error

    async def abort_transaction(self) -> None:
        kafka = await self._transactional()
        try:
            await kafka.abort_transaction()
        except Exception as error:
            raise self._transaction_failure(error, "abort") from error

    async def _transactional(self) -> ProducerClient:
        if self.transactional_id is None:
            raise ConfigError(f"the producer of cluster {self.cluster!r} has no transactional_id")
        if self._fenced is not None:  # it never comes back: only a new producer (a new owner) may
            raise TransactionError(
                str(self._fenced), cluster=self.cluster, transactional_id=self.transactional_id, fenced=True
            ) from self._fenced
        return await self._connection()

    def _transaction_failure(self, error: BaseException, doing: str) -> BaseException:
        """What to raise for aiokafka's ``error``: a connection failure stays what it is."""
        assert self.transactional_id is not None
        if isinstance(error, ClusterConnectionError | NotRunningError):
            return error
        failure = transaction_failure(
            error, cluster=self.cluster, transactional_id=self.transactional_id, doing=doing
        )
        if failure.fenced:
            self._fenced = failure
        return failure

    async def flush(self) -> None:
        if self._kafka is not None:
            await self._kafka.flush()

    async def stop(self) -> None:
        """Deliver what is buffered, then disconnect; later sends raise ``NotRunningError``."""
        async with self._lock:
            self._closed = True
            kafka, self._kafka = self._kafka, None
        if kafka is not None:
            await kafka.stop()  # flushes first

    def __repr__(self) -> str:
        return f"<Producer cluster={self.cluster!r} {self._kafka_cluster.servers}>"
