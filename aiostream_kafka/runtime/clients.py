"""Where Kafka clients come from: aiokafka's, or the testing harness's in-memory ones.

Every Kafka client of the package is made here: the Listener's consumer, each cluster's
producer, the Admin's admin client and its short-lived consumers, the Web UI's reports
reader. They ask ``app.clients`` (or the ``KafkaClients`` they were given) instead of
constructing aiokafka's classes themselves. That one seam is what lets the testing harness
run the very same Listener, Producer, Admin and status board code without a broker. The
protocols list exactly what the package uses of aiokafka's clients, so an in-memory
stand-in knows what it must do.

Each client gets its cluster's servers and security (TLS context, SASL) here, whatever
else its caller asks for, so no client can connect elsewhere, or otherwise, than its
cluster says. Starting a client stays the caller's: the runtime's start theirs under
``reachability.CLIENT_CLUSTER``, so that their background tasks say whose they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource
from aiokafka.protocol.api import Response
from aiokafka.structs import OffsetAndMetadata, OffsetAndTimestamp, RecordMetadata

from aiostream_kafka.config import Cluster


class ConsumerClient(Protocol):
    """A member of a consumer group, subscribed to topics: the Listener's consumer."""

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...  # no partitions: any assigned
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
    """A cluster's producer: what ``producing.Producer`` sends through."""

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
    # With a transactional_id (its start fences older producers of the same id):
    async def begin_transaction(self) -> None: ...
    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, int], group_id: str
    ) -> None: ...
    async def commit_transaction(self) -> None: ...
    async def abort_transaction(self) -> None: ...


class ReaderClient(Protocol):
    """A consumer of partitions assigned to it by hand, never a member of a group: the Admin's
    reads, offsets and offset resets (committing for a group it names), the Web UI's reports."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...  # no partitions: all assigned
    async def position(self, partition: TopicPartition) -> int: ...
    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...


class AdminClient(Protocol):
    """aiokafka's admin client, as the Admin uses it: answers are Kafka's own responses."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def describe_cluster(self) -> dict[str, Any]: ...
    async def describe_topics(self, topics: list[str] | None) -> list[dict[str, Any]]: ...  # None: all
    async def create_topics(self, new_topics: list[NewTopic]) -> Response: ...
    async def delete_topics(self, topics: list[str]) -> Response: ...
    async def create_partitions(self, topic_partitions: dict[str, NewPartitions]) -> Response: ...
    async def describe_configs(self, config_resources: list[ConfigResource]) -> list[Response]: ...
    async def alter_configs(self, config_resources: list[ConfigResource]) -> list[Response]: ...
    async def list_consumer_groups(self) -> list[tuple[Any, ...]]: ...  # (group id, protocol type)
    async def describe_consumer_groups(self, group_ids: list[str]) -> list[Response]: ...
    async def list_consumer_group_offsets(self, group_id: str) -> dict[TopicPartition, OffsetAndMetadata]: ...


class KafkaClients:
    """aiokafka's clients, each connected to the cluster it is for.

    ``settings`` are aiokafka's keyword arguments for the client; the cluster's servers and
    security are added to them, and win.
    """

    def consumer(self, cluster: Cluster, **settings: Any) -> ConsumerClient:
        consumer: ConsumerClient = AIOKafkaConsumer(**connecting(cluster, settings))
        return consumer

    def producer(self, cluster: Cluster, **settings: Any) -> ProducerClient:
        producer: ProducerClient = AIOKafkaProducer(**connecting(cluster, settings))
        return producer

    def reader(self, cluster: Cluster, **settings: Any) -> ReaderClient:
        reader: ReaderClient = AIOKafkaConsumer(**connecting(cluster, settings))
        return reader

    def admin(self, cluster: Cluster, **settings: Any) -> AdminClient:
        admin: AdminClient = AIOKafkaAdminClient(**connecting(cluster, settings))
        return admin


def connecting(cluster: Cluster, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with the cluster's servers and security (an ``ssl_context``, never TLS files)."""
    return {**settings, **cluster.settings.connection_kwargs()}
