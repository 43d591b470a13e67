"""What a route may hold back from its handler: a throttle's budget, and a filter's pause.

Declarations only; ``runtime/flow.py`` applies them to each partition's batch before the
handler sees it (``Route(filter=, throttle=, expire_after=, delay=)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiostream_kafka.contracts.flow import check_pause, check_throttle

THROTTLE_SCOPES = ("route", "partition")


@dataclass(frozen=True)
class Throttle:
    """At most ``messages`` handed to the handler in any ``per`` seconds.

    ``scope="route"``: one budget for all the partitions of the route this process holds;
    ``"partition"``: one budget per partition. A partition whose budget is spent is paused
    (on the app's clock) and the rest of its batch is fetched again once the budget allows
    it: the handler never sleeps. The budget is this process's: N processes of the app
    consume at most N times as much.
    """

    messages: int
    per: float = 1.0
    scope: str = "route"

    def __post_init__(self) -> None:
        check_throttle(self, THROTTLE_SCOPES)


@dataclass(frozen=True)
class Pause:
    """What a route's filter returns to hold its partition back: this message and what
    follows it on the partition come again ``until`` (a timezone-aware ``datetime``, or
    seconds from now on the app's clock)."""

    until: datetime | float

    def __post_init__(self) -> None:
        check_pause(self.until)

    def seconds_from(self, now: float) -> float:
        """How long from ``now`` (epoch seconds) the pause lasts; never below zero."""
        until = self.until
        wait = until.timestamp() - now if isinstance(until, datetime) else until
        return max(0.0, wait)
