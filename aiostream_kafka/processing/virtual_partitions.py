"""Virtual partitions: one Kafka partition's batch processed by several handlers at once."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from aiostream_kafka.contracts.virtual_partitions import check_virtual_partitions
from aiostream_kafka.messages import Message

#: What a route's messages are split by: a value per message (None: spread by offset).
KeyFunction = Callable[[Message[Any]], Hashable | None]


@dataclass(frozen=True)
class VirtualPartitions:
    """``Route(virtual_partitions=VirtualPartitions(concurrency=10))``: for I/O-bound handlers,
    each partition's batch is split by ``key`` into up to ``concurrency`` virtual partitions,
    each a ``Messages`` of its own (in offset order) handed to the handler concurrently with
    the others. Messages with equal keys go to the same virtual partition, so their order
    is kept.

    - ``key``: a function of a ``Message`` returning something hashable; by default the
      message key. A message without one (``key`` None, or the function returning None)
      is spread by its offset.

    The committed offset is the contiguous prefix of the batch that every virtual partition
    has finished; a failing virtual partition is retried on its own under the route's
    ``Retry`` and ``DeadLetterQueue`` (docs/processing-patterns.md).
    """

    concurrency: int = 10
    key: KeyFunction | None = None

    def __post_init__(self) -> None:
        check_virtual_partitions(self)
