"""What a handler holds right now: the batch, its route, since when.

Two readers need it when something will not let go of the event loop or of a stop: the
loop watchdog (a handler blocks the loop) and ``App.stop`` (a handler ignores cancellation).
Both name the route the same way, so an operator can grep one form.
"""

from __future__ import annotations

import time
from typing import NamedTuple


class InHand(NamedTuple):
    """One partition's batch in a handler's hands; ``started`` is ``time.monotonic()``."""

    cluster: str
    topic: str
    partition: int
    first_offset: int
    started: float
    handler: str

    def describe(self, now: float | None = None) -> str:
        """``orders/0 (handler app:on_orders, from offset 12, for 3.2s)``."""
        running = (time.monotonic() if now is None else now) - self.started
        return (
            f"{self.topic}/{self.partition} (handler {self.handler}, from offset {self.first_offset}, "
            f"for {running:.1f}s)"
        )
