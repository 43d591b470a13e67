"""What ``produce_many`` needs to build its own record batches: the Java client's partitioner,
one open batch per partition, and each message's metadata from its batch's.

aiokafka's ``send`` makes a coroutine, runs its partitioner and makes a future and a callback
for every message; ``create_batch`` / ``send_batch`` make one coroutine and one future a
batch, so a Python loop appending to batches outruns a ``send`` loop (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast, overload

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata

from aiostream_kafka.runtime.clients import AppendedRecord, RecordBatch

RecordHeaders = Sequence[tuple[str, bytes | None]]
#: The headers of a record without any: one list for all (aiokafka's C builder takes only a
#: list, and only reads it).
NO_HEADERS: RecordHeaders = []
#: Appends one record: (its place in the batch, timestamp, key, value, headers); None when full.
Append = Callable[[int, "int | None", "bytes | None", "bytes | None", RecordHeaders], "AppendedRecord | None"]

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
    """One partition's batch: filled, then sent; its delivery resolves for all its records.

    A record that comes without a timestamp gets the batch's ``stamp`` (the time the batch
    was opened), given to the builder, so that its metadata can say it without keeping what
    the builder returned for each record; those that come with one, by place, in ``stamped``.
    """

    __slots__ = (
        "append",
        "builder",
        "context",
        "count",
        "delivery",
        "failure",
        "first",
        "headers",
        "partition",
        "stamp",
        "stamped",
        "topic",
    )

    def __init__(
        self, topic: str, partition: int, builder: RecordBatch, first: tuple[Any, Any, Any], stamp: int
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.append = appender(builder)
        self.first = first  # value, key, headers of its first record: what a refusal is sized by
        self.stamp = stamp
        self.stamped: dict[int, int] = {}  # the timestamps records came with, by place
        #: What every record of the batch carries besides its own (``batch.producing``'s
        #: subscribers': trace context), and their state for it.
        self.headers: RecordHeaders = NO_HEADERS
        self.context: dict[str, Any] | None = None
        self.count = 0  # records appended
        self.delivery: asyncio.Future[RecordMetadata | None] | None = None
        self.failure: BaseException | None = None

    def add(
        self, timestamp: int | None, key: bytes | None, value: bytes | None, headers: RecordHeaders | None
    ) -> AppendedRecord | None:
        """Append a record off the hot path: with a timestamp of its own, or the stamp, and
        its own headers, the batch's, or both."""
        if headers is None:
            headers = self.headers
        elif self.headers:
            headers = [*headers, *self.headers]
        stamp = self.stamp if timestamp is None else timestamp
        appended = self.append(self.count, stamp, key, value, headers)
        if appended is not None and timestamp is not None:
            self.stamped[self.count] = timestamp
        return appended

    def close(self) -> None:
        """No more records: the batch is ready for ``send_batch``."""
        if type(self.builder) is BatchBuilder:
            builder: Any = self.builder
            builder._relative_offset = self.count  # what its record_count() answers
        self.builder.close()

    def release(self) -> None:
        """Sent and settled: let its records' bytes go, since the results outlive the batch."""
        del self.builder, self.append


class Filling:
    """What one ``produce_many`` has in hand: its open batches (by topic, then partition),
    those sent and those refused, and where its keyless records go."""

    __slots__ = ("counts", "hashes", "keyless", "opened", "refused", "sent")

    def __init__(self) -> None:
        self.opened: dict[str, dict[int, OpenBatch]] = {}
        self.sent: list[OpenBatch] = []
        self.refused: list[OpenBatch] = []  # of a record over max_request_size: never sent
        self.counts: dict[str, int] = {}  # partitions, by topic
        self.keyless: dict[str, int] = {}  # by topic: the partition its keyless records go to now
        self.hashes: dict[bytes, int] = {}  # by key: keys repeat, and murmur2 in Python is slow


def appender(builder: RecordBatch) -> Append:
    """The fastest way to append to ``builder``.

    aiokafka's ``BatchBuilder`` is a Python wrapper, taking keywords, around a builder in C,
    and a costly part of ``produce_many`` (docs/performance.md). For it, the C builder's own
    ``append`` (positional, the record's place in the batch first), with ``OpenBatch``
    counting the places and handing the count back at ``close``, as the wrapper would have
    (an idempotent producer numbers its records from it). Other builders (the testing
    harness's) through their ``append``.
    """
    if type(builder) is BatchBuilder:
        append: Append = cast(Any, builder)._builder.append
        return append

    def through_builder(
        place: int, timestamp: int | None, key: bytes | None, value: bytes | None, headers: RecordHeaders
    ) -> AppendedRecord | None:
        return builder.append(timestamp=timestamp, key=key, value=value, headers=headers)

    return through_builder


def message_metadata(batch: OpenBatch, place: int) -> RecordMetadata | None:
    """A message's metadata from its batch's: base offset + its place, its own timestamp
    unless the broker set the batch's (LogAppendTime). None for ``acks=0``, as ``send``'s."""
    assert batch.delivery is not None
    delivered = batch.delivery.result()
    if delivered is None:
        return None
    if delivered.timestamp == CREATE_TIME:
        timestamp = batch.stamped.get(place, batch.stamp) if batch.stamped else batch.stamp
    else:
        timestamp = delivered.timestamp
    # tuple.__new__ skips the namedtuple's Python-level __new__, most of a result's cost.
    metadata: RecordMetadata = _new(
        RecordMetadata,
        (
            delivered.topic,
            delivered.partition,
            delivered.topic_partition,
            delivered.offset + place,
            timestamp,
            delivered.timestamp_type,
            delivered.log_start_offset,
        ),
    )
    return metadata


class Produced(Sequence[RecordMetadata]):
    """``produce_many``'s results: each message's metadata, in the order the messages came.

    Made when read: a ``RecordMetadata`` per message is much of ``produce_many``'s time
    (docs/performance.md), and most callers only need to know that everything was delivered
    (it raises otherwise). Only each message's batch is kept: its place in it is how many
    messages before it went to the same batch, counted on first read.
    Compares equal to a list of the same metadata.
    """

    __slots__ = ("_batches", "_places")

    def __init__(self, batches: list[OpenBatch]) -> None:
        self._batches = batches  # each message's batch (delivered)
        self._places: list[int] | None = None

    def _placed(self) -> list[int]:
        if self._places is None:
            seen: dict[int, int] = {}  # records so far, by id of their batch
            places = self._places = []
            for batch in self._batches:
                place = seen.get(id(batch), 0)
                seen[id(batch)] = place + 1
                places.append(place)
        return self._places

    def __len__(self) -> int:
        return len(self._batches)

    @overload
    def __getitem__(self, index: int) -> RecordMetadata: ...
    @overload
    def __getitem__(self, index: slice) -> list[RecordMetadata]: ...
    def __getitem__(self, index: int | slice) -> RecordMetadata | list[RecordMetadata]:
        if isinstance(index, slice):
            return list(map(message_metadata, self._batches[index], self._placed()[index]))
        metadata: RecordMetadata = message_metadata(self._batches[index], self._placed()[index])
        return metadata

    def __iter__(self) -> Iterator[RecordMetadata]:
        return map(message_metadata, self._batches, self._placed())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Produced | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Produced({list(self)!r})"
