"""MirrorMaker 2's records, decoded in Python: no JVM in the app.

The layouts are Kafka's ``org.apache.kafka.connect.mirror`` classes (connect-mirror-client
``Checkpoint``, ``Heartbeat``; connect-mirror ``OffsetSync``), written with Kafka's protocol
types: INT16/INT32/INT64 big-endian, STRING an INT16 length then UTF-8. Checkpoint and
heartbeat values start with an INT16 version (0, the only one there is).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SUPPORTED_VERSION = 0


class RecordFormatError(ValueError):
    """A record of a MirrorMaker topic that is not what that topic holds."""


class _Reader:
    def __init__(self, data: bytes | None, what: str) -> None:
        if data is None:
            raise RecordFormatError(f"{what}: no bytes (a tombstone?)")
        self._data = data
        self._at = 0
        self._what = what

    def _take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise RecordFormatError(
                f"{self._what}: {len(self._data)} bytes end before field at byte {self._at}"
            )
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def int16(self) -> int:
        value: int = struct.unpack(">h", self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self._take(4))[0]
        return value

    def int64(self) -> int:
        value: int = struct.unpack(">q", self._take(8))[0]
        return value

    def string(self) -> str:
        size = self.int16()
        if size < 0:
            raise RecordFormatError(f"{self._what}: a null string where MirrorMaker writes none")
        return self._take(size).decode("utf-8")

    def version(self) -> None:
        version = self.int16()
        if version != SUPPORTED_VERSION:
            raise RecordFormatError(
                f"{self._what}: version {version}, but only version {SUPPORTED_VERSION} is known; "
                f"a newer MirrorMaker wrote it"
            )

    def end(self) -> None:
        if self._at != len(self._data):
            raise RecordFormatError(f"{self._what}: {len(self._data) - self._at} bytes left over")


@dataclass(frozen=True)
class Checkpoint:
    """A consumer group's committed offset on the source (``upstream_offset``) and where that is
    on the replica (``downstream_offset``), for one partition of the replica's ``topic``."""

    group: str
    topic: str  # the replica's name of the topic (the policy's)
    partition: int
    upstream_offset: int
    downstream_offset: int
    metadata: str
    timestamp_ms: int  # when MirrorMaker read the group's offsets

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None, timestamp_ms: int) -> Checkpoint:
        k = _Reader(key, "checkpoint key")
        group, topic, partition = k.string(), k.string(), k.int32()
        k.end()
        v = _Reader(value, "checkpoint value")
        v.version()
        upstream, downstream, metadata = v.int64(), v.int64(), v.string()
        v.end()
        return cls(group, topic, partition, upstream, downstream, metadata, timestamp_ms)


@dataclass(frozen=True)
class Heartbeat:
    """MirrorMaker was alive and replicating ``source`` to ``target`` at ``timestamp_ms``."""

    source: str
    target: str
    timestamp_ms: int

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None) -> Heartbeat:
        k = _Reader(key, "heartbeat key")
        source, target = k.string(), k.string()
        k.end()
        v = _Reader(value, "heartbeat value")
        v.version()
        timestamp = v.int64()
        v.end()
        return cls(source, target, timestamp)


@dataclass(frozen=True)
class OffsetSync:
    """Record ``upstream_offset`` of the source's ``topic`` is the replica's ``downstream_offset``."""

    topic: str  # the source's name
    partition: int
    upstream_offset: int
    downstream_offset: int

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None) -> OffsetSync:
        k = _Reader(key, "offset sync key")
        topic, partition = k.string(), k.int32()
        k.end()
        v = _Reader(value, "offset sync value")  # no version: MirrorMaker writes none here
        upstream, downstream = v.int64(), v.int64()
        v.end()
        return cls(topic, partition, upstream, downstream)
