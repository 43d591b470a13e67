"""What handlers receive: a ``Messages`` batch of ``Message`` from one partition."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar, overload

from aiostream_kafka.codecs import Decoder
from aiostream_kafka.errors import DecodeError

T = TypeVar("T")

_UNDECODED: Any = object()


class Message(Generic[T]):
    """One Kafka record, with its payload decoded on first access."""

    __slots__ = (
        "_decoder",
        "_payload",
        "cluster",
        "key",
        "offset",
        "partition",
        "raw_headers",
        "timestamp_ms",
        "topic",
        "value",
    )

    def __init__(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        raw_headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int = 0,
        cluster: str = "primary",
        decoder: Decoder | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.raw_headers = raw_headers
        self.timestamp_ms = timestamp_ms
        self.cluster = cluster
        self._decoder = decoder
        self._payload: Any = _UNDECODED

    @property
    def payload(self) -> T:
        """The value decoded with the route's payload type (raw bytes when it has none).

        Decoded once, lazily, so a batch whose handler only looks at keys pays nothing.
        Raises ``DecodeError`` naming the topic, partition and offset.
        """
        if self._payload is _UNDECODED:
            if self._decoder is None or self.value is None:
                self._payload = self.value
            else:
                try:
                    self._payload = self._decoder(self.value)
                except Exception as error:
                    raise DecodeError(
                        f"cannot decode payload: {error}",
                        topic=self.topic,
                        partition=self.partition,
                        offset=self.offset,
                    ) from error
        payload: T = self._payload
        return payload

    @property
    def headers(self) -> Mapping[str, bytes]:
        """Headers by name; the last one wins where a name repeats (see ``raw_headers``)."""
        return dict(self.raw_headers)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=timezone.utc)

    def __repr__(self) -> str:
        return f"<Message {self.cluster}/{self.topic}[{self.partition}]@{self.offset}>"


class Messages(Sequence[Message[T]]):
    """A batch from one partition of one topic, in offset order."""

    __slots__ = ("_messages", "attempt", "cluster", "partition", "topic")

    def __init__(
        self, messages: Sequence[Message[T]], *, topic: str, partition: int, cluster: str, attempt: int = 1
    ) -> None:
        self._messages = messages
        self.topic = topic
        self.partition = partition
        self.cluster = cluster
        #: 1 on first delivery; 2 and up when the same batch is tried again after a failure.
        self.attempt = attempt

    @property
    def first_offset(self) -> int:
        return self._messages[0].offset

    @property
    def last_offset(self) -> int:
        return self._messages[-1].offset

    def payloads(self) -> list[T]:
        return [message.payload for message in self._messages]

    @overload
    def __getitem__(self, index: int) -> Message[T]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Message[T]]: ...

    def __getitem__(self, index: int | slice) -> Message[T] | Sequence[Message[T]]:
        return self._messages[index]

    def __iter__(self) -> Iterator[Message[T]]:
        return iter(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def __repr__(self) -> str:
        span = f"{self.first_offset}..{self.last_offset}" if self._messages else "empty"
        return f"<Messages {self.cluster}/{self.topic}[{self.partition}] {span} ({len(self)})>"
