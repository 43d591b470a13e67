"""What MirrorMaker wrote, read back through the app's Admin: checkpoints and heartbeats on
the replica, offset syncs on the source. Plain reads without a consumer group."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiostream_kafka.admin.client import Admin
from aiostream_kafka.messages import Message
from aiostream_kafka.replication.records import Checkpoint, Heartbeat, OffsetSync, RecordFormatError

T = TypeVar("T")
#: (group, replica topic, partition) -> the newest checkpoint
Checkpoints = dict[tuple[str, str, int], Checkpoint]
#: (source topic, partition) -> offset syncs in offset order
OffsetSyncs = dict[tuple[str, int], list[OffsetSync]]


async def read_topic(admin: Admin, topic: str, decode: Callable[[Message[bytes]], T]) -> list[T]:
    """Every record of ``topic`` (which must exist) decoded, partition by partition; nothing
    when it does not exist yet. A record that does not decode is an error naming its place."""
    if topic not in await admin.list_topics(internal=True):
        return []
    decoded: list[T] = []
    for partition, (start, end) in (await admin.offsets(topic)).items():
        for message in await admin.read(topic, partition=partition, start=start, count=end - start):
            try:
                decoded.append(decode(message))
            except RecordFormatError as error:
                raise RecordFormatError(
                    f"cluster {admin.name!r}, {topic}/{partition} offset {message.offset}: {error}"
                ) from None
    return decoded


async def newest_checkpoints(admin: Admin, topic: str) -> Checkpoints:
    """The newest checkpoint of each group and partition in ``topic`` (the replica's
    ``<source>.checkpoints.internal``): its last record per key, as a compacted topic keeps."""
    checkpoints = await read_topic(admin, topic, lambda m: Checkpoint.decode(m.key, m.value, m.timestamp_ms))
    return {(c.group, c.topic, c.partition): c for c in checkpoints}


async def newest_heartbeat(admin: Admin, topic: str) -> Heartbeat | None:
    """The newest heartbeat in ``topic``: ``<source>.heartbeats`` on a replica says when
    replication from the source last worked."""
    beats = await read_topic(admin, topic, lambda m: Heartbeat.decode(m.key, m.value))
    return max(beats, key=lambda beat: beat.timestamp_ms, default=None)


async def offset_syncs(admin: Admin, topic: str) -> OffsetSyncs:
    """Every offset sync in ``topic`` (``mm2-offset-syncs.<replica>.internal`` on the source)."""
    syncs: OffsetSyncs = {}
    for sync in await read_topic(admin, topic, lambda m: OffsetSync.decode(m.key, m.value)):
        syncs.setdefault((sync.topic, sync.partition), []).append(sync)
    for found in syncs.values():
        found.sort(key=lambda s: (s.downstream_offset, s.upstream_offset))
    return syncs
