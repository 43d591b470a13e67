"""Deciding what a failure means for a partition: try again later, or give the message up.

Pure bookkeeping, no I/O, so every rule is unit-tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.runtime.backoff import Backoff

#: Errors that say the process itself is in trouble: never retried, never dead-lettered.
FATAL_ERRORS: tuple[type[BaseException], ...] = (MemoryError, KeyboardInterrupt, SystemExit)


def is_fatal(error: BaseException) -> bool:
    """Fatal errors, anything that is not an ``Exception`` (cancellation included), and
    exception groups (from task groups) holding one of those."""
    if isinstance(error, FATAL_ERRORS) or not isinstance(error, Exception):
        return True
    return any(is_fatal(inner) for inner in getattr(error, "exceptions", ()))


@dataclass(frozen=True)
class Decision:
    #: retry: seek back to ``offset`` and wait ``delay``; dispatch: send the message at
    #: ``offset`` to the DLQ and move on; skip: move on without sending it anywhere.
    action: Literal["retry", "dispatch", "skip"]
    offset: int
    attempts: int
    delay: float = 0.0


@dataclass
class _Failures:
    offset: int
    attempts: int


class FailurePolicy:
    """Attempt counting per partition for one route (``Retry`` + optional ``DeadLetterQueue``)."""

    def __init__(self, backoff: Backoff, dead_letter_queue: DeadLetterQueue | None) -> None:
        self.backoff = backoff
        self.dead_letter_queue = dead_letter_queue
        self._failures: dict[int, _Failures] = {}

    def attempt(self, partition: int) -> int:
        """The number of the attempt about to be made on this partition's first unprocessed message."""
        failures = self._failures.get(partition)
        return failures.attempts + 1 if failures else 1

    def succeeded(self, partition: int) -> None:
        self._failures.pop(partition, None)

    def forget(self, partition: int) -> None:
        """The partition was revoked; whoever gets it next starts counting afresh."""
        self._failures.pop(partition, None)

    def failed(
        self,
        partition: int,
        first_unprocessed: int,
        error: BaseException,
        *,
        poison_offset: int | None = None,
    ) -> Decision:
        """``poison_offset``: the batch's message whose payload did not decode, if that was the error."""
        queue = self.dead_letter_queue
        if queue is not None and poison_offset is not None and not queue.retry_decode_errors:
            return self._give_up(partition, poison_offset, self.attempt(partition))

        previous = self._failures.get(partition)
        if previous is None or (
            queue is not None and queue.independent and previous.offset != first_unprocessed
        ):
            attempts = 1
        else:
            attempts = previous.attempts + 1
        if queue is not None and attempts > queue.max_retries:
            return self._give_up(partition, first_unprocessed, attempts)
        self._failures[partition] = _Failures(first_unprocessed, attempts)
        return Decision("retry", first_unprocessed, attempts, self.backoff.delay(attempts))

    def _give_up(self, partition: int, offset: int, attempts: int) -> Decision:
        self._failures.pop(partition, None)
        assert self.dead_letter_queue is not None
        action: Literal["dispatch", "skip"] = "skip" if self.dead_letter_queue.topic is None else "dispatch"
        return Decision(action, offset, attempts)
