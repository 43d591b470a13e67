"""Deciding what a failure means for a partition: try again later, or give the message up.

Pure bookkeeping, no I/O, so every rule is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from aiokafka.errors import BrokerNotAvailableError, KafkaError, KafkaTimeoutError, KafkaUnavailableError

from aiostream_kafka.errors import ClusterConnectionError
from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.runtime.backoff import Backoff

#: Errors that say the process itself is in trouble: never retried, never dead-lettered.
FATAL_ERRORS: tuple[type[BaseException], ...] = (MemoryError, KeyboardInterrupt, SystemExit)

#: The infrastructure's faults that aiokafka does not mark ``retriable``: a cluster we cannot
#: reach, a request that timed out (a producer's delivery past ``request_timeout_ms``).
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ClusterConnectionError,
    KafkaTimeoutError,
    KafkaUnavailableError,
    BrokerNotAvailableError,
)


def is_fatal(error: BaseException) -> bool:
    """Fatal errors, anything that is not an ``Exception`` (cancellation included), and
    exception groups (from task groups) holding one of those."""
    if isinstance(error, FATAL_ERRORS) or not isinstance(error, Exception):
        return True
    return any(is_fatal(inner) for inner in getattr(error, "exceptions", ()))


def is_transient(error: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether ``error`` is the infrastructure's fault, not the handler's or the data's: an
    unreachable cluster, a leader election, a coordinator move, a timeout (aiokafka's
    retriable errors and ``INFRASTRUCTURE_ERRORS``), or one of the route's own ``also``.

    An error raised ``from`` one of those counts too (a wrapper keeps its cause), and an
    exception group counts when every error in it does.
    """
    members = getattr(error, "exceptions", None)
    if members:
        return all(is_transient(member, also) for member in members)
    kinds = (*INFRASTRUCTURE_ERRORS, *also)
    return any(
        isinstance(cause, kinds) or (isinstance(cause, KafkaError) and cause.retriable)
        for cause in _causes(error)
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


@dataclass(frozen=True)
class Decision:
    #: retry: seek back to ``offset`` and wait ``delay``; wait: the same for a transient
    #: fault, which spends no attempt; dispatch: send the message at ``offset`` to the DLQ
    #: and move on; skip: move on without sending it anywhere.
    action: Literal["retry", "wait", "dispatch", "skip"]
    offset: int
    attempts: int
    delay: float = 0.0


@dataclass
class _Failures:
    offset: int
    attempts: int


class FailurePolicy:
    """Attempt counting per partition for one route (``Retry`` + optional ``DeadLetterQueue``).

    Only what the handler or the data causes spends attempts: a transient fault (see
    ``is_transient``) makes the partition wait, with a backoff of its own, for as long as it
    lasts, and the message is processed once the infrastructure is back.
    """

    def __init__(
        self,
        backoff: Backoff,
        dead_letter_queue: DeadLetterQueue | None,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.backoff = backoff
        self.dead_letter_queue = dead_letter_queue
        self.transient = transient
        self._failures: dict[int, _Failures] = {}
        self._waits: dict[int, int] = {}  # transient faults in a row, per partition

    def attempt(self, partition: int) -> int:
        """The number of the attempt about to be made on this partition's first unprocessed message."""
        failures = self._failures.get(partition)
        return failures.attempts + 1 if failures else 1

    def succeeded(self, partition: int) -> None:
        self._failures.pop(partition, None)
        self._waits.pop(partition, None)

    def forget(self, partition: int) -> None:
        """The partition was revoked; whoever gets it next starts counting afresh."""
        self._failures.pop(partition, None)
        self._waits.pop(partition, None)

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
        if queue is not None and isinstance(error, queue.dispatch_on):
            return self._give_up(partition, first_unprocessed, self.attempt(partition))
        if is_transient(error, self.transient):
            waits = self._waits[partition] = self._waits.get(partition, 0) + 1
            return Decision("wait", first_unprocessed, self.attempt(partition), self.backoff.delay(waits))

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
