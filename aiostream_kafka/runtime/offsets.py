"""A listener's offsets: what is done per partition, and committing it.

At-least-once lives here. An offset is committed only once the handler returned for every
record before it (or marked it, with manual offsets); what could not be committed is kept
so that a partition coming back to this listener is not processed twice; and an idle
listener commits past records it was never handed (transaction markers, aborted records),
so that a group's lag can reach 0.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.runtime.clients import ConsumerClient

#: How often an idle listener looks for partitions whose position moved past what it was
#: handed (transaction markers, aborted records) so that it can commit there (seconds).
SKIPPED_CHECK_INTERVAL = 1.0


class Offsets:
    def __init__(self, monitor: Monitor, tags: dict[str, str]) -> None:
        self._monitor = monitor
        self._tags = tags
        #: What was processed but could not be committed (the group moved on): kept across
        #: rebalances and restarts, so that a partition that comes back is not processed twice.
        self._uncommitted: dict[TopicPartition, int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget one consumer's state (a listener run); keep what failed to commit."""
        self._done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._dead: dict[TopicPartition, set[int]] = {}  # dead-lettered or done ahead, not committed past
        #: Next offset after the last handled batch, per partition: what the lag is counted from.
        self.positions: dict[TopicPartition, int] = {}
        self._handed: dict[TopicPartition, int] = {}  # next offset after the last record polled
        self._committed: dict[TopicPartition, int | None] = {}  # last committed (None: never)
        self._skipped_checked = 0.0
        #: When the last commit succeeded (``time.time()``), for the statistics.
        self.last_commit: float | None = None

    # --- what is done --------------------------------------------------------------------

    def handed(self, tp: TopicPartition, next_offset: int) -> None:
        """A poll handed over ``tp``'s records up to ``next_offset``."""
        self._handed[tp] = next_offset

    def advance(self, tp: TopicPartition, next_offset: int) -> None:
        """Everything of ``tp`` before ``next_offset`` is done (never moves back)."""
        self._done[tp] = max(next_offset, self._done.get(tp, 0))

    def dead_lettered(self, tp: TopicPartition, offset: int) -> None:
        """``offset`` went to the dead-letter queue while the work before it comes again."""
        self._dead.setdefault(tp, set()).add(offset)

    def done_ahead(self, tp: TopicPartition, offsets: Iterable[int]) -> None:
        """``offsets`` are done, past an offset that is not (another virtual partition's work
        while one failed): left out when they come again, like dead letters."""
        self._dead.setdefault(tp, set()).update(offsets)

    def dead(self, tp: TopicPartition) -> set[int] | None:
        """Offsets of ``tp`` to leave out when they come again (see ``dead_lettered``)."""
        return self._dead.get(tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions this listener no longer owns (revoked, after their last commit)."""
        for tp in partitions:
            self._dead.pop(tp, None)
            self.positions.pop(tp, None)
            self._handed.pop(tp, None)
            self._committed.pop(tp, None)

    def lag(self, consumer: ConsumerClient) -> dict[str, int]:
        """Records behind the high watermark, per assigned partition handled so far."""
        lag = {}
        for tp in consumer.assignment():
            high, position = consumer.highwater(tp), self.positions.get(tp)
            if high is not None and position is not None:
                lag[f"{tp.topic}/{tp.partition}"] = max(0, high - position)
        return lag

    # --- committing ----------------------------------------------------------------------

    async def commit(self, consumer: ConsumerClient, only: Iterable[TopicPartition] | None = None) -> None:
        """Commit what is done (of ``only``, if given) on the partitions still assigned."""
        partitions = set(self._done) if only is None else set(only) & set(self._done)
        if not partitions:
            return
        assigned = consumer.assignment()
        offsets = {tp: self._done.pop(tp) for tp in partitions}
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:
            # The group moved on (or the cluster is away): whoever owns these partitions next
            # starts from the last commit and sees these messages again; at-least-once holds.
            # If they come back to this listener, it skips what it had done (``resume``).
            for tp, offset in offsets.items():
                self._uncommitted[tp] = max(offset, self._uncommitted.get(tp, 0))
            self._monitor.emit("error.occurred", **self._tags, type="commit", error=error)
            return
        self.last_commit = time.time()
        self._committed.update(offsets)
        for tp, offset in offsets.items():
            if self._uncommitted.get(tp, offset) <= offset:
                self._uncommitted.pop(tp, None)
            dead = self._dead.get(tp)
            if dead:
                dead.difference_update({o for o in dead if o < offset})
        self._monitor.emit(
            "offsets.committed",
            **self._tags,
            offsets={f"{tp.topic}/{tp.partition}": offset for tp, offset in offsets.items()},
        )

    def committed_in_transaction(self, tp: TopicPartition, offset: int) -> None:
        """An exactly-once batch's transaction committed ``offset`` for ``tp`` (never through
        the consumer: see runtime/transactions.py)."""
        self.last_commit = time.time()
        self._committed[tp] = offset
        dead = self._dead.get(tp)
        if dead:
            dead.difference_update({o for o in dead if o < offset})
        offsets = {f"{tp.topic}/{tp.partition}": offset}
        self._monitor.emit("offsets.committed", **self._tags, offsets=offsets, transactional=True)

    async def commit_skipped(self, consumer: ConsumerClient) -> None:
        """Commit where the consumer moved past records it never handed over.

        A transaction's commit or abort marker takes an offset of its own, and under read
        committed an aborted transaction's records are never returned either, so a group
        that committed only what its handlers saw would keep a lag of at least 1 forever. An
        idle listener therefore commits the consumer's position for every partition whose
        polled records are all committed and whose position is further: only skipped
        records (or a handler's seek forward) lie in between. At most once a second.
        """
        now = time.monotonic()
        if now - self._skipped_checked < SKIPPED_CHECK_INTERVAL:
            return
        self._skipped_checked = now
        try:
            for tp in consumer.assignment() - consumer.paused():
                if tp not in self._committed:
                    if tp in self._handed:
                        continue  # polled in this assignment, not committed yet
                    self._committed[tp] = await consumer.committed(tp)
                committed, handed = self._committed[tp], self._handed.get(tp)
                if handed is not None and committed != handed:
                    continue  # what was polled is not all committed yet: a batch failed, or marks are due
                position = await consumer.position(tp)
                if committed is None or position > committed:
                    self._done[tp] = self._handed[tp] = self.positions[tp] = position
        except KafkaError:
            return  # a rebalance or the cluster is away: the next idle poll looks again
        await self.commit(consumer)

    async def resume(self, consumer: ConsumerClient, assigned: set[TopicPartition]) -> dict[str, int]:
        """Move the ``assigned`` partitions past what this listener processed but could not
        commit, unless another member got further meanwhile; returns where each resumed."""
        resumed: dict[str, int] = {}
        for tp in sorted(assigned & self._uncommitted.keys()):
            done = self._uncommitted.pop(tp)
            try:
                committed = await consumer.committed(tp)
            except KafkaError:
                continue  # not known: process again (at-least-once)
            if committed is None or committed < done:  # nobody got further meanwhile
                consumer.seek(tp, done)
                self._done[tp] = done
                resumed[f"{tp.topic}/{tp.partition}"] = done
        return resumed
