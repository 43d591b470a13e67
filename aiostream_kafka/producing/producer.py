"""A cluster's producer: msgspec encoding and Monitor events around one ``AIOKafkaProducer``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from aiostream_kafka.codecs import Encoder
from aiostream_kafka.config import Cluster
from aiostream_kafka.errors import NotRunningError
from aiostream_kafka.instrumentation.monitor import Monitor

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

    def __init__(self, cluster: Cluster, monitor: Monitor, *, client_id: str, format: str = "json") -> None:
        self.cluster = cluster
        self._monitor = monitor
        self._client_id = client_id
        self._encoder = Encoder(format)
        self._kafka: AIOKafkaProducer | None = None
        self._lock = anyio.Lock()
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._kafka is not None

    async def start(self) -> None:
        await self._connection()

    async def _connection(self) -> AIOKafkaProducer:
        if self._kafka is not None:
            return self._kafka
        async with self._lock:
            if self._closed:
                raise NotRunningError(f"the producer for cluster {self.cluster.name!r} is stopped")
            if self._kafka is None:
                settings = {"client_id": self._client_id, **self.cluster.settings.producer_kwargs()}
                kafka = AIOKafkaProducer(**settings)
                try:
                    await kafka.start()
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await kafka.stop()
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
        delivery = await self.produce_nowait(
            topic, value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
        )
        return await delivery

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
        """
        kafka = await self._connection()
        try:
            delivery: asyncio.Future[RecordMetadata] = await kafka.send(
                topic,
                self._encoder.value(value),
                key=self._encoder.key(key),
                headers=self._encoder.headers(headers),
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        except Exception as error:
            self._monitor.emit("produce.failed", cluster=self.cluster.name, topic=topic, error=error)
            raise
        if self._monitor.listens_to("message.produced") or self._monitor.listens_to("produce.failed"):
            delivery.add_done_callback(lambda done: self._report(topic, done))
        return delivery

    async def produce_many(self, records: Iterable[ProducerRecord]) -> list[RecordMetadata]:
        """Send many messages in flight at once and wait for all of them, in order."""
        deliveries = [
            await self.produce_nowait(
                r.topic,
                r.value,
                key=r.key,
                headers=r.headers,
                partition=r.partition,
                timestamp_ms=r.timestamp_ms,
            )
            for r in records
        ]
        return list(await asyncio.gather(*deliveries))

    def _report(self, topic: str, delivery: asyncio.Future[RecordMetadata]) -> None:
        if delivery.cancelled():
            return
        error = delivery.exception()
        if error is not None:
            self._monitor.emit("produce.failed", cluster=self.cluster.name, topic=topic, error=error)
            return
        metadata = delivery.result()
        self._monitor.emit(
            "message.produced",
            cluster=self.cluster.name,
            topic=topic,
            partition=metadata.partition,
            offset=metadata.offset,
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
