"""A listener's periodic statistics: throughput, lag, paused partitions, last commit."""

from __future__ import annotations

import time
from collections.abc import Iterable

import anyio
from aiokafka import TopicPartition

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.offsets import Offsets


class Statistics:
    def __init__(self, monitor: Monitor, tags: dict[str, str], offsets: Offsets) -> None:
        self._monitor = monitor
        self._tags = tags
        self._offsets = offsets
        #: Messages handled by this listener run (counted per batch by the executor).
        self.processed = 0

    async def report(self, consumer: ConsumerClient, interval: float) -> None:
        """Emit ``statistics.emitted`` every ``interval`` seconds, until cancelled."""
        counted, since = self.processed, time.monotonic()
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            self._monitor.emit(
                "statistics.emitted",
                **self._tags,
                messages_per_second=round((self.processed - counted) / (now - since), 2),
                processed=self.processed,
                lag=self._offsets.lag(consumer),
                assigned=names(consumer.assignment()),
                paused=names(consumer.paused()),
                last_commit=self._offsets.last_commit,
            )
            counted, since = self.processed, now


def names(partitions: Iterable[TopicPartition]) -> list[str]:
    """``["orders/0", "orders/1"]``: partitions as events name them."""
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)
