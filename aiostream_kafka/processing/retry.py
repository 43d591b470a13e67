"""How long a failing partition waits before its batch is tried again."""

from __future__ import annotations

from dataclasses import dataclass

from aiostream_kafka.contracts.failures import check_retry
from aiostream_kafka.runtime.backoff import Backoff


@dataclass(frozen=True)
class Retry:
    """Exponential backoff between attempts: ``backoff``, then doubling up to ``max_backoff`` seconds.

    Without a dead-letter queue a failing batch is retried for as long as it fails (nothing
    is lost); a ``DeadLetterQueue`` decides when to give up on a message.

    ``transient``: your own exception types that, like the infrastructure's faults, mean
    "not now" rather than "never": the partition waits (same backoff) until they pass and
    they never count toward a DLQ's ``max_retries``. Kafka's own are always transient: an
    unreachable cluster, a leader election, a coordinator move, a request that timed out
    (aiokafka's retriable errors, ``ClusterConnectionError``, ``KafkaTimeoutError``), and any
    error raised ``from`` one of them.
    """

    backoff: float = 1.0
    max_backoff: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1
    transient: tuple[type[Exception], ...] = ()

    def __post_init__(self) -> None:
        check_retry(self)

    def as_backoff(self) -> Backoff:
        return Backoff(self.backoff, self.max_backoff, self.multiplier, self.jitter)
