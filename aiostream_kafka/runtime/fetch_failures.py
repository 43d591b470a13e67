"""A partition the consumer cannot read: which one, what it had read already, and what fixes it.

aiokafka raises one partition's read failure (a codec it lacks, a batch failing its CRC
check, a record larger than the fetch size, a topic it may not read) out of ``getmany()``
for the whole consumer, without saying which partition. Worse, the records it had already
taken from other partitions in that call are dropped while their positions have moved on:
carrying on as if nothing was returned would lose them. Only the traceback knows both:
aiokafka's ``Fetcher.fetched_records`` frame holds the partition it was reading (``tp``) and
what it had drained from the others (``drained``); the failing partition's
``FetchResult.getall`` frame holds the records read before the bad batch (``ret_list``) and
where that batch begins. ``locate`` reads them there, so that the Listener can hold back
that one partition and hand everything else on.

These are aiokafka internals (stable from 0.12 to 0.14, the versions we accept);
tests/integration/test_fetch_failures.py checks them against a real broker. When they are
not where we look, ``locate`` returns None and the listener crashes and restarts as for any
other error: slower, never lossy (it starts again from the last commit).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CorruptRecordException,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedCodecError,
)

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass
class FetchFailure:
    partition: TopicPartition
    error: BaseException
    #: The first offset that could not be read (None: ask the consumer for its position).
    offset: int | None
    #: Records the failing call had read, the failing partition's good ones before the bad
    #: batch included: the consumer will not return them again.
    salvaged: Records = field(default_factory=dict)


def locate(error: BaseException) -> FetchFailure | None:
    """The partition ``error`` (raised by ``getmany``) belongs to, or None if it is not one's."""
    fetch = getall = None
    for frame in _frames(error):
        if frame.f_code.co_name == "fetched_records" and isinstance(frame.f_locals.get("tp"), TopicPartition):
            fetch = frame.f_locals
        elif frame.f_code.co_name == "getall" and fetch is not None:
            getall = frame.f_locals
    if fetch is None:
        return None
    tp: TopicPartition = fetch["tp"]
    drained = dict(fetch.get("drained") or {})
    salvaged: Records = {p: list(records) for p, records in drained.items() if records}
    offset = _offset_in(getall, error)
    if getall is not None and getall.get("ret_list"):
        salvaged[tp] = list(getall["ret_list"])
    return FetchFailure(tp, error, offset, salvaged)


def _frames(error: BaseException) -> Iterator[FrameType]:
    traceback = error.__traceback__
    while traceback is not None:
        yield traceback.tb_frame
        traceback = traceback.tb_next


def _offset_in(getall: dict[str, Any] | None, error: BaseException) -> int | None:
    if getall is not None:
        records = getattr(getall.get("self"), "_partition_records", None)
        offset = getattr(records, "next_fetch_offset", None)
        if isinstance(offset, int):
            return offset
    # RecordTooLargeError(message, partition, fetch_offset, fetch_size); aiokafka has moved the
    # position one past the record, which must not be skipped unnoticed.
    if isinstance(error, RecordTooLargeError) and len(error.args) >= 3 and isinstance(error.args[2], int):
        return error.args[2]
    return None


def remedy(error: BaseException, cluster: str) -> str:
    """What to change so that the partition can be read, in a user's words."""
    if isinstance(error, UnsupportedCodecError):
        return (
            "install cramjam (pip install 'aiokafka[snappy,lz4,zstd]'), which aiostream-kafka depends on "
            "for snappy, lz4 and zstd: this environment lacks it or cannot import it"
        )
    if isinstance(error, CorruptRecordException):
        return (
            f"the batch fails its CRC check, so the data is damaged on its way or on the broker; "
            f"check_crcs=False (check.crcs) on cluster {cluster!r} reads it anyway"
        )
    if isinstance(error, RecordTooLargeError):
        return (
            f"raise max_partition_fetch_bytes (max.partition.fetch.bytes) on cluster {cluster!r} above "
            f"the record's size"
        )
    if isinstance(error, TopicAuthorizationFailedError):
        return f"grant this client's principal READ on the topic on cluster {cluster!r}"
    return f"{type(error).__name__} from the consumer of cluster {cluster!r}"
