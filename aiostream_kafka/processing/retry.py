"""How long a failing partition waits before its batch is tried again."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiostream_kafka.errors import ConfigError, check_exception_types
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
        check_exception_types(self.transient, f"Retry(transient={self.transient!r})")
        if not all(math.isfinite(x) for x in (self.backoff, self.max_backoff, self.multiplier, self.jitter)):
            raise ConfigError(f"{self}: every value must be a finite number")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"Retry(jitter={self.jitter}): a fraction of the delay, 0 <= jitter < 1")
        if self.backoff < 0 or self.max_backoff < self.backoff:
            raise ConfigError(
                f"Retry(backoff={self.backoff}, max_backoff={self.max_backoff}): "
                f"need 0 <= backoff <= max_backoff (seconds)"
            )
        if self.multiplier < 1:
            raise ConfigError(f"Retry(multiplier={self.multiplier}): the multiplier must be at least 1")

    def as_backoff(self) -> Backoff:
        return Backoff(self.backoff, self.max_backoff, self.multiplier, self.jitter)
