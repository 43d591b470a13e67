"""Straight to aiokafka's accumulator: what ``AIOKafkaProducer.send`` does for a message, less
what a ``Producer`` already knows.

For every message ``send`` waits on the topic's metadata, checks for a transaction, estimates
the record's size, runs the partitioner over fresh lists of the topic's partitions, makes a
``TopicPartition`` and logs: most of a send loop's time (docs/performance.md). A message for
a topic this producer has sent to before (so aiokafka has its metadata, and refreshes it),
without headers, far under ``max_request_size``, gets only the append here, on the partition
``send`` would have picked: its own, its key's (murmur2, as Java's), or a random one with a
leader for a keyless one. Anything else goes through ``send``, and so does everything for a
producer this cannot read: a transactional one, one with serializers or a partitioner of
its own, another client than aiokafka's.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata, TopicPartition

from aiostream_kafka.producing.batching import BATCH_HEADER, NO_HEADERS, SIZE_SLACK, key_hash
from aiostream_kafka.runtime.clients import ProducerClient

Queued = Coroutine[Any, Any, "asyncio.Future[RecordMetadata]"]
#: A leader not known (yet): aiokafka's partitioner leaves such a partition out for keyless records.
NO_LEADER = -1


class DirectSend:
    """One producer's way to its accumulator; ``of`` says whether there is one."""

    __slots__ = ("_add", "_limit", "_metadata", "_places", "_random", "_timeout", "known")

    def __init__(self, kafka: Any) -> None:
        self._add = kafka._message_accumulator.add_message
        self._metadata = kafka._metadata  # aiokafka's ClusterMetadata: its _partitions is replaced on refresh
        self._timeout = kafka._request_timeout_ms / 1000  # what send gives the accumulator
        self._limit = kafka._max_request_size - BATCH_HEADER - SIZE_SLACK  # far under: no estimate needed
        self._places: dict[str, dict[int, TopicPartition]] = {}
        self._random = random.randrange
        #: Topics sent to through ``send``: their metadata is there, and kept fresh.
        self.known: set[str] = set()

    @classmethod
    def of(cls, kafka: ProducerClient) -> DirectSend | None:
        if type(kafka) is not AIOKafkaProducer:
            return None
        client: Any = kafka
        try:
            transactions = client._txn_manager
            plain = (
                (transactions is None or transactions.transactional_id is None)
                and client._key_serializer is None
                and client._value_serializer is None
                and type(client._partitioner) is DefaultPartitioner
                and isinstance(client._metadata._partitions, dict)
            )
            return cls(client) if plain else None
        except AttributeError:  # an aiokafka whose insides differ: send does it all
            return None

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        timestamp_ms: int | None,
    ) -> Queued | None:
        """The append (to await), or None: then ``send`` must take the message."""
        if topic not in self.known:
            return None
        partitions: dict[int, Any] | None = self._metadata._partitions.get(topic)
        if partitions is None:
            return None
        if value is None:
            if key is None or len(key) > self._limit:
                return None  # send refuses a record with neither
        elif len(value) + (0 if key is None else len(key)) > self._limit:
            return None  # near max_request_size: send measures it
        if partition is None:
            if key is None:
                partition = self._random(len(partitions))
                where = partitions.get(partition)
                if where is None or where.leader == NO_LEADER:
                    return None  # send picks among those with a leader
            else:
                partition = key_hash(key) % len(partitions)
        elif partition not in partitions:
            return None  # send says why
        places = self._places.get(topic)
        if places is None:
            places = self._places[topic] = {}
        place = places.get(partition)
        if place is None:
            place = places[partition] = TopicPartition(topic, partition)
        queued: Queued = self._add(place, key, value, self._timeout, timestamp_ms, NO_HEADERS)
        return queued
