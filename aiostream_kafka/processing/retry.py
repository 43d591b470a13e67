"""How long a failing partition waits before its batch is tried again."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiostream_kafka.errors import ConfigError
from aiostream_kafka.runtime.backoff import Backoff


@dataclass(frozen=True)
class Retry:
    """Exponential backoff between attempts: ``backoff``, then doubling up to ``max_backoff`` seconds.

    Without a dead-letter queue a failing batch is retried for as long as it fails (nothing
    is lost); a ``DeadLetterQueue`` decides when to give up on a message.
    """

    backoff: float = 1.0
    max_backoff: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
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
