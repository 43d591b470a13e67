"""Pausing, resuming and seeking a listener's partitions.

Several things pause a partition: a retry's backoff, a partition that cannot be read, a
handler's ``pause``, and the poll loop setting a slow batch's partition aside. Each pause
takes a token; a timed resume (or the set-aside loop's end) resumes only if its own token
is still the latest, so an earlier pause's timer never cuts a later one short.
"""

from __future__ import annotations

from datetime import datetime

import anyio.abc
from aiokafka import TopicPartition

from aiostream_kafka.messages import AfterBatch
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.runtime.clock import Clock

#: The token of a partition set aside while a slow batch runs (see ``Listener``).
_SET_ASIDE = object()


class Pauses:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[TopicPartition, object] = {}
        #: Where timed resumes run: the listener's background tasks, while it runs.
        self.background: anyio.abc.TaskGroup | None = None

    def pause(
        self, consumer: ConsumerClient, tp: TopicPartition, *, seek_to: int | None, delay: float | None
    ) -> None:
        """Pause ``tp`` (rewound to ``seek_to``) until ``delay`` seconds pass or it is resumed."""
        if seek_to is not None:
            consumer.seek(tp, seek_to)
        consumer.pause(tp)
        token = self._tokens[tp] = object()
        if delay is not None and self.background is not None:
            self.background.start_soon(self._resume_later, consumer, tp, delay, token)

    def resume(self, consumer: ConsumerClient, tp: TopicPartition) -> None:
        self._tokens.pop(tp, None)
        if tp in consumer.assignment():
            consumer.resume(tp)

    def forget(self, tp: TopicPartition) -> None:
        """``tp`` was revoked: nothing of this listener's may resume it any more."""
        self._tokens.pop(tp, None)

    async def _resume_later(
        self, consumer: ConsumerClient, tp: TopicPartition, delay: float, token: object
    ) -> None:
        await self._clock.sleep(delay)
        if self._tokens.get(tp) is token:
            self.resume(consumer, tp)

    # --- partitions set aside ------------------------------------------------------------

    def set_aside(self, consumer: ConsumerClient, tp: TopicPartition) -> None:
        """Pause ``tp`` while a slow batch of it runs, so that a new poller leaves it alone."""
        if self._tokens.get(tp) is not _SET_ASIDE:
            consumer.pause(tp)
            self._tokens[tp] = _SET_ASIDE

    def is_set_aside(self, tp: TopicPartition) -> bool:
        return self._tokens.get(tp) is _SET_ASIDE

    def take_back(self, consumer: ConsumerClient, tp: TopicPartition) -> None:
        """The slow batch ended: resume ``tp``, unless something paused it since (a retry, the handler)."""
        if self._tokens.get(tp) is _SET_ASIDE:
            self.resume(consumer, tp)

    # --- what a handler asked for --------------------------------------------------------

    async def apply(
        self, consumer: ConsumerClient, tp: TopicPartition, action: AfterBatch, *, next_offset: int | None
    ) -> None:
        """Carry out a handler's pause, resume or seek of ``tp``."""
        kind, argument = action
        if kind == "pause":
            delay = None if argument is None else int(argument) / 1000  # type: ignore[arg-type]
            self.pause(consumer, tp, seek_to=next_offset, delay=delay)
        elif kind == "resume":
            self.resume(consumer, tp)
        elif tp in consumer.assignment():
            await _seek(consumer, tp, argument)


async def _seek(consumer: ConsumerClient, tp: TopicPartition, target: object) -> None:
    if target == "earliest":
        await consumer.seek_to_beginning(tp)
    elif target == "latest":
        await consumer.seek_to_end(tp)
    elif isinstance(target, datetime):
        found = (await consumer.offsets_for_times({tp: int(target.timestamp() * 1000)})).get(tp)
        if found is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, found.offset)
    else:
        assert isinstance(target, int)
        consumer.seek(tp, target)
