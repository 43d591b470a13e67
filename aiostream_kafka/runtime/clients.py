"""Where Kafka clients come from: aiokafka's, or the testing harness's in-memory ones.

The runtime asks ``app.clients`` for a consumer or a producer instead of constructing
aiokafka's classes itself. That one seam is what lets the testing harness run the very same
Listener and Producer code without a broker. The protocols list exactly what the runtime
uses of aiokafka's clients, so an in-memory stand-in knows what it must do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import OffsetAndTimestamp, RecordMetadata

from aiostream_kafka.config import Cluster


class ConsumerClient(Protocol):
    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def getmany(
        self, *, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...
    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...
    def assignment(self) -> set[TopicPartition]: ...
    def paused(self) -> set[TopicPartition]: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...
    async def seek_to_end(self, *partitions: TopicPartition) -> None: ...
    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    async def position(self, partition: TopicPartition) -> int: ...
    async def committed(self, partition: TopicPartition) -> int | None: ...


class AppendedRecord(Protocol):
    """What a batch's ``append`` returns: the record's place in its batch, its size, its time."""

    @property
    def offset(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def timestamp(self) -> int: ...


class RecordBatch(Protocol):
    """aiokafka's ``BatchBuilder``: records for one partition, sent together by ``send_batch``."""

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] = ...,
    ) -> AppendedRecord | None: ...  # None: the batch is full
    def close(self) -> None: ...
    def record_count(self) -> int: ...


class ProducerClient(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def flush(self) -> None: ...
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> asyncio.Future[RecordMetadata]: ...
    def create_batch(self) -> RecordBatch: ...
    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[RecordMetadata | None]: ...  # the batch's base offset; None for acks=0
    async def partitions_for(self, topic: str) -> set[int]: ...  # waits for the topic's metadata


class KafkaClients:
    """aiokafka's clients, connected to the cluster they are for."""

    def consumer(self, cluster: Cluster, **settings: Any) -> ConsumerClient:
        consumer: ConsumerClient = AIOKafkaConsumer(**settings)
        return consumer

    def producer(self, cluster: Cluster, **settings: Any) -> ProducerClient:
        producer: ProducerClient = AIOKafkaProducer(**settings)
        return producer
