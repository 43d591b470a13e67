"""What handlers receive: a ``Messages`` batch of ``Message`` from one partition."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import msgspec

from aiostream_kafka import deprecation
from aiostream_kafka.codecs import Decoder

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
from aiostream_kafka.errors import DecodeError

T = TypeVar("T")

_UNDECODED: Any = object()


class Message(msgspec.Struct, Generic[T], eq=False):
    """One Kafka record, with its payload decoded on first access.

    A tombstone (``value`` None) has ``payload`` None on every route, typed or not: it is
    never decoded. ``key`` is None for a record without one (``b""`` is an empty key), and a
    header without a value has None as its value.

    A msgspec Struct, not a slotted class: batches make one per record the handler looks at,
    and a Struct's constructor is C (docs/performance.md). Positional or keyword; compared
    by identity.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    raw_headers: Sequence[tuple[str, bytes | None]] = ()
    timestamp_ms: int = 0
    cluster: str = "primary"
    #: The route's decoder (None: ``payload`` is the raw value).
    decoder: Decoder | None = None
    _payload: Any = _UNDECODED

    @property
    def payload(self) -> T:
        """The value decoded with the route's payload type (raw bytes when it has none).

        Decoded once, lazily, so a batch whose handler only looks at keys pays nothing.
        A tombstone's payload is None, whatever the route's type or decoder (never called
        with None). Raises ``DecodeError`` naming the topic, partition and offset.
        """
        if self._payload is _UNDECODED:
            if self.decoder is None or self.value is None:
                self._payload = self.value
            else:
                try:
                    self._payload = self.decoder(self.value)
                except Exception as error:
                    raise _decode_error(error, self.topic, self.partition, self.offset) from error
        payload: T = self._payload
        return payload

    @property
    def headers(self) -> Mapping[str, bytes | None]:
        """Headers by name; the last one wins where a name repeats (``raw_headers`` has them
        all, in order). A header without a value maps to None."""
        return dict(self.raw_headers)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=timezone.utc)

    def __repr__(self) -> str:
        return f"<Message {self.cluster}/{self.topic}[{self.partition}]@{self.offset}>"


SeekTarget = int | str | datetime
"""An offset, ``"earliest"``, ``"latest"``, or a time (the first message at or after it)."""

#: What the handler asked to happen to its partition once the batch returns.
AfterBatch = tuple[str, SeekTarget | int | None]


class Messages(Sequence[Message[T]]):
    """A batch from one partition of one topic, in offset order.

    Besides the messages, it is the handler's handle on its partition: mark progress
    (``mark_as_consumed``), ``pause`` / ``resume`` / ``seek`` once the batch returns, and
    ``revoked`` to stop early when the partition is being taken away.

    A batch the listener hands over holds aiokafka's records and makes its ``Message``
    objects only when the handler first iterates or indexes it; ``len``, the offsets and
    ``payloads()`` read the records directly (see ``batch_of``).
    """

    __slots__ = (
        "_closed",
        "_decoder",
        "_is_revoked",
        "_marked",
        "_messages",
        "_payloads",
        "_records",
        "after_batch",
        "attempt",
        "cluster",
        "partition",
        "topic",
    )

    def __init__(
        self,
        messages: Sequence[Message[T]],
        *,
        topic: str,
        partition: int,
        cluster: str,
        attempt: int = 1,
        is_revoked: Callable[[], bool] | None = None,
    ) -> None:
        self._messages: Sequence[Message[T]] | None = messages
        self._records: Sequence[ConsumerRecord[bytes, bytes]] = ()
        self._decoder: Decoder | None = None
        self._payloads: list[Any] | None = None  # decoded by payloads() before any Message existed
        self.topic = topic
        self.partition = partition
        self.cluster = cluster
        #: 1 on first delivery; 2 and up when the same batch is tried again after a failure.
        self.attempt = attempt
        self._is_revoked = is_revoked
        self._marked: int | None = None
        self.after_batch: AfterBatch | None = None
        self._closed = False

    def close(self) -> None:
        """The handler has returned: marks, pauses and seeks on this batch are refused from now
        on, since nothing would act on them (a Consumer's own pause / seek still work)."""
        self._closed = True

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(
                f"{what} on the batch of {self.topic}[{self.partition}] after its handler returned: "
                f"call it while the handler runs (or use the Consumer's own pause / seek)"
            )

    @property
    def _all(self) -> Sequence[Message[T]]:
        """The messages, made from the records on first use."""
        messages = self._messages
        if messages is None:
            messages = self._messages = from_records(self._records, self.cluster, self._decoder)
            if self._payloads:
                for message, payload in zip(messages, self._payloads, strict=False):  # may be partial
                    message._payload = payload
        return messages

    @property
    def revoked(self) -> bool:
        """True once a rebalance is taking this partition away: finish up, or stop early."""
        return self._is_revoked() if self._is_revoked is not None else False

    def mark_as_consumed(self, message: Message[T]) -> None:
        """Record that ``message`` and everything before it in the partition are done.

        With ``manual_offset_management=True`` only marked offsets are committed; with
        automatic offsets, marks tell a failing batch where to resume (and, for a DLQ,
        which message is the culprit). Marking an earlier message than one already
        marked changes nothing.
        """
        self._check_open("mark_as_consumed")
        if message.topic != self.topic or message.partition != self.partition:
            raise ValueError(
                f"{message!r} is not in this batch ({self.topic}[{self.partition}]); mark it on its own batch"
            )
        if self._marked is None or message.offset + 1 > self._marked:
            self._marked = message.offset + 1

    @property
    def marked_offset(self) -> int | None:
        """The next offset to commit after the marks so far (None: nothing marked)."""
        return self._marked

    def pause(self, for_ms: int | None = None, *, duration: float | None = None) -> None:
        """Once this batch returns, pause the partition (``duration`` seconds, or until ``resume``).

        It resumes after this batch, or with ``manual_offset_management`` at the first message
        not marked; the rest of the poll is not handed out. (``for_ms``: the old way to say
        how long, in milliseconds.)
        """
        self._check_open("pause")
        self.after_batch = ("pause", pause_ms(for_ms, duration))

    def resume(self) -> None:
        """Cancel a ``pause`` or ``seek`` asked for during this batch."""
        self._check_open("resume")
        self.after_batch = None

    def seek(self, target: SeekTarget) -> None:
        """Once this batch returns, continue the partition from ``target`` instead."""
        self._check_open("seek")
        check_seek_target(target)
        self.after_batch = ("seek", target)

    def as_received(self, offset: int) -> Message[T]:
        """The message at ``offset`` as it arrived, whatever the handler did to its ``Message``
        since: what a dead-letter queue sends."""
        for record in self._records:
            if record.offset == offset:
                return from_records([record], self.cluster, self._decoder)[0]
        return next(m for m in self._all if m.offset == offset)

    @property
    def first_offset(self) -> int:
        return self._messages[0].offset if self._messages is not None else self._records[0].offset

    @property
    def last_offset(self) -> int:
        return self._messages[-1].offset if self._messages is not None else self._records[-1].offset

    def payloads(self) -> list[T]:
        """Every message's payload, in order (None for a tombstone, never decoded); raises
        ``DecodeError`` at the first that fails."""
        if self._messages is not None:
            return [message.payload for message in self._messages]
        decode, records = self._decoder, self._records
        if decode is None:
            return [record.value for record in records]
        # Straight from the records, without making a Message each; kept for when they are made.
        payloads = self._payloads
        if payloads is None:
            payloads = self._payloads = []
        if len(payloads) < len(records):
            append = payloads.append
            try:
                for record in records[len(payloads) :] if payloads else records:
                    value = record.value
                    append(None if value is None else decode(value))
            except Exception as error:
                culprit = records[len(payloads)]
                raise _decode_error(error, culprit.topic, culprit.partition, culprit.offset) from error
        return list(payloads)

    @overload
    def __getitem__(self, index: int) -> Message[T]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Message[T]]: ...

    def __getitem__(self, index: int | slice) -> Message[T] | Sequence[Message[T]]:
        return self._all[index]

    def __iter__(self) -> Iterator[Message[T]]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._messages) if self._messages is not None else len(self._records)

    def __repr__(self) -> str:
        span = f"{self.first_offset}..{self.last_offset}" if len(self) else "empty"
        return f"<Messages {self.cluster}/{self.topic}[{self.partition}] {span} ({len(self)})>"


def batch_of(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    *,
    topic: str,
    partition: int,
    cluster: str,
    decoder: Decoder | None = None,
    attempt: int = 1,
    is_revoked: Callable[[], bool] | None = None,
    messages: Sequence[Message[Any]] | None = None,
) -> Messages[Any]:
    """The batch a handler gets for ``records`` (one partition's, in offset order): its
    messages are made only if the handler looks at them one by one. This is the hot path.
    ``messages``: the records' ``Message`` objects, when something before the handler (a
    route's filter) made them already."""
    batch: Messages[Any] = Messages((), topic=topic, partition=partition, cluster=cluster, attempt=attempt)
    batch._messages = messages
    batch._records = records
    batch._decoder = decoder
    batch._is_revoked = is_revoked
    return batch


def _decode_error(error: Exception, topic: str, partition: int, offset: int) -> DecodeError:
    return DecodeError(f"cannot decode payload: {error}", topic=topic, partition=partition, offset=offset)


def check_seek_target(target: object) -> None:
    if isinstance(target, bool) or not (
        (isinstance(target, int) and target >= 0)
        or target in ("earliest", "latest")
        or isinstance(target, datetime)
    ):
        raise ValueError(f"seek({target!r}): an offset >= 0, 'earliest', 'latest' or a datetime")


def pause_ms(for_ms: object, duration: object) -> int | None:
    """How long a ``pause(for_ms, duration=)`` asks for, in the milliseconds the listener
    counts (rounded up, so never shorter); None: until resumed."""
    if for_ms is not None:
        deprecation.warn("pause(for_ms=...)", "pause(duration=...) (seconds)")
        if duration is not None:
            raise ValueError("pause(): give duration= (seconds) only, not for_ms= as well")
        if isinstance(for_ms, bool) or not isinstance(for_ms, int) or for_ms < 0:
            raise ValueError(f"pause(for_ms={for_ms!r}): milliseconds as a whole number >= 0, or None")
        return for_ms
    if duration is None:
        return None
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not 0 <= duration < math.inf:
        raise ValueError(f"pause(duration={duration!r}): seconds >= 0, or None")
    return math.ceil(duration * 1000)


def from_records(
    records: Iterable[ConsumerRecord[bytes, bytes]], cluster: str, decoder: Decoder | None = None
) -> list[Message[Any]]:
    """The messages aiokafka records carry, from ``cluster``: one call per batch, not per
    message, and positional arguments, since this is the hot path (docs/performance.md)."""
    new = Message
    return [
        new(r.topic, r.partition, r.offset, r.key, r.value, r.headers or (), r.timestamp, cluster, decoder)
        for r in records
    ]
