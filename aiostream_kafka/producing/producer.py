"""A cluster's producer: msgspec encoding and Monitor events around one ``AIOKafkaProducer``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import RecordMetadata

from aiostream_kafka.codecs import Encoder
from aiostream_kafka.config import Cluster
from aiostream_kafka.diagnosis import connection_error
from aiostream_kafka.errors import NotRunningError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.runtime.clients import KafkaClients, ProducerClient

Headers = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class ProducerRecord:
    """One message for ``produce_many``."""

    topic: str
    value: Any = None
    key: Any = None
    headers: Headers | None = None
    partition: int | None = None
    timestamp_ms: int | None = None


class Producer:
    """Connects on start (or on first use if the cluster was down then); flushes on stop."""

    def __init__(
        self,
        cluster: Cluster,
        monitor: Monitor,
        *,
        client_id: str,
        format: str = "json",
        clients: KafkaClients | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.cluster = cluster
        self._clients = clients or KafkaClients()
        self._overrides = dict(overrides or {})  # on top of the cluster's producer settings
        self._monitor = monitor
        self._client_id = client_id
        self._encoder = Encoder(format)
        self._kafka: ProducerClient | None = None
        self._lock = anyio.Lock()
        self._closed = False
        self._server = cluster.settings.bootstrap_servers[0]

    async def start(self) -> None:
        await self._connection()

    async def _connection(self) -> ProducerClient:
        if self._kafka is not None:
            return self._kafka
        async with self._lock:
            if self._closed:
                raise NotRunningError(f"the producer for cluster {self.cluster.name!r} is stopped")
            if self._kafka is None:
                settings = {
                    "client_id": self._client_id,
                    **self.cluster.settings.producer_kwargs(),
                    **self._overrides,
                }
                kafka = self._clients.producer(self.cluster, **settings)
                try:
                    await kafka.start()
                except BaseException as error:
                    with anyio.CancelScope(shield=True):
                        await kafka.stop()
                    if isinstance(error, KafkaConnectionError):
                        raise await connection_error(self.cluster, error) from error
                    raise
                self._kafka = kafka
        return self._kafka

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
        """Send one message and wait until the broker has it."""
        delivery, context = await self._send(topic, value, key, headers, partition, timestamp_ms)
        try:
            metadata = await delivery
        except Exception as error:
            self._failed(topic, error, context)
            raise
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

        Waits only while the producer's buffer is full, so many sends can be in flight.
        ``message.produced`` / ``produce.failed`` follow for it only while something observes
        each message (a delivery callback per message is costly); its future always tells.
        """
        delivery, context = await self._send(topic, value, key, headers, partition, timestamp_ms)
        if self._monitor.listens_to("message.produced"):
            delivery.add_done_callback(lambda done: self._report(topic, done, context))
        return delivery

    async def produce_many(self, records: Iterable[ProducerRecord]) -> list[RecordMetadata]:
        """Send many messages in flight at once and wait for all of them, in order.

        Raises the first failure, after every message has been accounted for.
        """
        sent = [
            (r.topic, *await self._send(r.topic, r.value, r.key, r.headers, r.partition, r.timestamp_ms))
            for r in records
        ]
        outcomes = await asyncio.gather(*(delivery for _, delivery, _ in sent), return_exceptions=True)
        failure: BaseException | None = None
        for (topic, _, context), outcome in zip(sent, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._failed(topic, outcome, context)
                failure = failure or outcome
            else:
                self._delivered(topic, outcome, context)
        if failure is not None:
            raise failure
        return outcomes

    async def _send(
        self,
        topic: str,
        value: Any,
        key: Any,
        headers: Headers | None,
        partition: int | None,
        timestamp_ms: int | None,
    ) -> tuple[asyncio.Future[RecordMetadata], dict[str, Any] | None]:
        kafka = await self._connection()
        encoded_headers = self._encoder.headers(headers)
        context: dict[str, Any] | None = None
        if self._monitor.listens_to("message.producing"):
            # Subscribers may add headers (trace context) and keep state for this send in context.
            encoded_headers = encoded_headers or []
            context = {}
            self._monitor.emit(
                "message.producing",
                cluster=self.cluster.name,
                topic=topic,
                partition=partition,
                server=self._server,
                headers=encoded_headers,
                context=context,
            )
        try:
            delivery: asyncio.Future[RecordMetadata] = await kafka.send(
                topic,
                self._encoder.value(value),
                key=self._encoder.key(key),
                headers=encoded_headers or None,
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        except Exception as error:
            self._failed(topic, error, context)
            raise
        return delivery, context

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
                cluster=self.cluster.name,
                topic=topic,
                partition=metadata.partition,
                offset=metadata.offset,
                context=context,
            )

    def _failed(self, topic: str, error: BaseException, context: dict[str, Any] | None) -> None:
        self._monitor.emit(
            "produce.failed", cluster=self.cluster.name, topic=topic, error=error, context=context
        )

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
        return f"<Producer cluster={self.cluster.name!r} {self.cluster.bootstrap_servers}>"
