"""The work a listener has in hand: which partitions' records are being processed, the batch
each handler holds and since when, and which partitions a rebalance is taking away.

A rebalance waits here for the revoked partitions' work to end (or cancels it), a stop
reports what handlers still hold, and the slow-batch watch reads how long they have held it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
from aiokafka import TopicPartition

from aiostream_kafka.messages import Messages
from aiostream_kafka.runtime.in_hand import InHand


class InFlight:
    def __init__(self) -> None:
        self.done: dict[TopicPartition, anyio.Event] = {}  # set when the partition's work ends
        self.scopes: dict[TopicPartition, anyio.CancelScope] = {}  # around each partition's work
        self.current: dict[TopicPartition, Messages[Any]] = {}  # the batch a handler holds
        self.started: dict[TopicPartition, float] = {}  # when it began (monotonic)
        self.slow: set[TopicPartition] = set()  # batches in hand already reported slow
        self.revoked: set[TopicPartition] = set()  # being taken away by a rebalance
        #: The listener is stopping: exactly-once work ends at its next batch (committed).
        self.stopping = False

    def begin(self, partitions: Iterable[TopicPartition]) -> None:
        """A poll's partitions go to their handlers."""
        self.done.update({tp: anyio.Event() for tp in partitions})

    def finished(self, tp: TopicPartition) -> None:
        """``tp``'s work of this poll ended (done, failed or cancelled)."""
        self.scopes.pop(tp, None)
        self.done[tp].set()

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """The poll that held ``partitions`` is over."""
        for tp in partitions:
            self.done.pop(tp, None)

    @property
    def idle(self) -> bool:
        """No poll's records are being processed."""
        return not self.done

    def unfinished(self) -> list[TopicPartition]:
        return [tp for tp, done in self.done.items() if not done.is_set()]

    def hold(self, tp: TopicPartition, batch: Messages[Any]) -> None:
        self.current[tp] = batch
        self.started[tp] = time.monotonic()

    def release(self, tp: TopicPartition) -> None:
        self.current.pop(tp, None)
        self.started.pop(tp, None)
        self.slow.discard(tp)

    async def finish(self, partitions: Iterable[TopicPartition], within: float) -> list[str]:
        """Let the work on ``partitions`` end within ``within`` seconds, then cancel what is
        left and wait for it; returns the partitions whose work was cancelled."""
        busy = {tp: self.done[tp] for tp in partitions if tp in self.done}
        with anyio.move_on_after(within):
            for event in busy.values():
                await event.wait()
        abandoned = sorted(f"{tp.topic}/{tp.partition}" for tp, event in busy.items() if not event.is_set())
        for tp, event in busy.items():
            if not event.is_set():
                scope = self.scopes.get(tp)
                if scope is not None:
                    scope.cancel()
                await event.wait()
        return abandoned

    def in_hand(self, cluster: str, handlers: Mapping[str, str]) -> list[InHand]:
        """The batches handlers hold now (``handlers``: each topic's handler name).

        Read-only, and it copies ``current`` before reading it, which another thread (the
        loop watchdog) may do.
        """
        started = self.started
        return [
            InHand(
                cluster,
                tp.topic,
                tp.partition,
                batch.first_offset,
                started.get(tp, 0.0),
                handlers.get(tp.topic, "?"),
            )
            for tp, batch in list(self.current.items())
        ]
