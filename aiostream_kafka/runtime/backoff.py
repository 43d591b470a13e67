"""Exponential backoff with jitter, for restarting listeners and retrying batches."""

from __future__ import annotations

import random
from dataclasses import dataclass

from aiostream_kafka.contracts.failures import check_backoff


@dataclass(frozen=True)
class Backoff:
    """``initial`` seconds, then ``multiplier`` times longer each attempt, up to ``maximum``
    seconds. A route's ``Retry`` uses the same words."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1  # a fraction of the delay, so that many restarts do not line up

    def __post_init__(self) -> None:
        check_backoff(self)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` starts at 1)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else base
