"""The producer of a failed-over cluster: the same calls, sent to its replica under the names
MirrorMaker's policy gives its topics there (docs/disaster-recovery.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from aiokafka.structs import RecordMetadata

from aiostream_kafka.config import Cluster
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.producing.producer import Headers, Producer, ProducerRecord


class RenamingProducer(Producer):
    """Prefixes every topic with ``prefix`` (``primary.`` under MirrorMaker's default policy).

    Only a failed-over app makes one, so the renaming costs nothing on the usual path.
    """

    def __init__(self, cluster: Cluster, monitor: Monitor, *, prefix: str, **options: Any) -> None:
        super().__init__(cluster, monitor, **options)
        self.prefix = prefix

    async def produce(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        return await super().produce(
            self.prefix + topic,
            value,
            key=key,
            headers=headers,
            partition=partition,
            timestamp_ms=timestamp_ms,
        )

    async def produce_nowait(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        return await super().produce_nowait(
            self.prefix + topic,
            value,
            key=key,
            headers=headers,
            partition=partition,
            timestamp_ms=timestamp_ms,
        )

    async def produce_many(self, records: Iterable[ProducerRecord]) -> Sequence[RecordMetadata]:
        prefix = self.prefix
        return await super().produce_many(
            [msgspec.structs.replace(r, topic=prefix + r.topic) for r in records]
        )

    def __repr__(self) -> str:
        return (
            f"<Producer cluster={self.cluster!r} {self._kafka_cluster.servers} topics {self.prefix!r}+topic>"
        )
