"""What ``produce_many`` needs to build its own record batches: the Java client's partitioner,
one open batch per partition, and each message's metadata from its batch's.

aiokafka's ``send`` costs ~8 us a message (a coroutine, its partitioner, a future and a
callback per message); ``create_batch`` / ``send_batch`` cost one coroutine and one future a
batch, so a Python loop appending to batches runs at several times the rate of a ``send``
loop (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata

from aiostream_kafka.runtime.clients import RecordBatch

#: The bytes a v2 record batch adds around its records, as aiokafka counts a message's size.
BATCH_HEADER = 61
#: What a record's size in its batch may differ by from aiokafka's estimate of it (varints).
SIZE_SLACK = 64

_new = tuple.__new__

#: How the broker says a timestamp is the producer's own (CreateTime): each record keeps its.
CREATE_TIME = -1


def key_hash(key: bytes) -> int:
    """``toPositive(murmur2(key))``, as Java's default partitioner (and aiokafka's) hash a key."""
    hashed: int = murmur2(key)
    return hashed & 0x7FFFFFFF


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the Java client (and aiokafka's default partitioner) picks for ``key``."""
    return key_hash(key) % partitions


def too_large(size: int) -> MessageSizeTooLargeError:
    """aiokafka's own error for a message over ``max_request_size``, word for word."""
    return MessageSizeTooLargeError(
        f"The message is {size} bytes when serialized which is larger than the maximum request "
        "size you have configured with the max_request_size configuration"
    )


class OpenBatch:
    """One partition's batch: filled, then sent; its delivery resolves for all its records."""

    __slots__ = ("builder", "count", "delivery", "failure", "first", "partition", "topic")

    def __init__(self, topic: str, partition: int, builder: RecordBatch, first: tuple[Any, Any, Any]) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.first = first  # value, key, headers of its first record: what a refusal is sized by
        self.count = 0
        self.delivery: asyncio.Future[RecordMetadata | None] | None = None
        self.failure: BaseException | None = None


def message_metadata(batch: RecordMetadata | None, appended: Any) -> RecordMetadata | None:
    """A message's metadata from its batch's: base offset + its place, its own timestamp
    unless the broker set the batch's (LogAppendTime). None for ``acks=0``, as ``send``'s."""
    if batch is None:
        return None
    timestamp = appended.timestamp if batch.timestamp == CREATE_TIME else batch.timestamp
    # tuple.__new__ skips the namedtuple's Python-level __new__: ~0.5 us of ~1 a message.
    metadata: RecordMetadata = _new(
        RecordMetadata,
        (
            batch.topic,
            batch.partition,
            batch.topic_partition,
            batch.offset + appended.offset,
            timestamp,
            batch.timestamp_type,
            batch.log_start_offset,
        ),
    )
    return metadata
