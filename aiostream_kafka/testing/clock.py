"""A clock whose waits end early when the harness says so: time in a test moves by jumps.

Retry backoffs, timed pauses and delayed jobs sleep on ``app.clock``. Under the harness
nobody should wait seconds for them, but their order and their length should still hold.
When the app has nothing else to do, ``drain()`` jumps this clock to the earliest wake-up
(as trio's autojump clock does), so a 30 s backoff passes at once and ``now()`` says 30 s
later, which is what delayed jobs compare against. A periodic chore's ``tick`` is no
wake-up to jump to (it would give ``drain()`` no end): it passes when time moves on anyway,
by a jump or a test's ``advance``.
"""

from __future__ import annotations

import itertools
import time

import anyio

from aiostream_kafka.runtime.clock import Clock


class VirtualClock(Clock):
    def __init__(self) -> None:
        self._offset = 0.0
        self._sleepers: dict[int, tuple[float, anyio.Event]] = {}
        self._tickers: dict[int, tuple[float, anyio.Event]] = {}
        self._ids = itertools.count()

    def now(self) -> float:
        return time.time() + self._offset

    async def sleep(self, seconds: float) -> None:
        """Until ``seconds`` of virtual time pass: a jump, or that much real time, whichever is first."""
        await self._wait(self._sleepers, seconds)

    async def tick(self, seconds: float) -> None:
        """As ``sleep``, but never the wake-up ``jump`` goes to."""
        await self._wait(self._tickers, seconds)

    async def tick_until(self, when: float) -> None:
        """As ``tick``, until the moment ``when``: passed once time is moved to it, or beyond."""
        await self._wait(self._tickers, when - self.now(), due=when)

    async def _wait(
        self, waiting: dict[int, tuple[float, anyio.Event]], seconds: float, due: float | None = None
    ) -> None:
        waiter = next(self._ids)
        woken = anyio.Event()
        waiting[waiter] = (self.now() + seconds if due is None else due, woken)
        try:
            with anyio.move_on_after(seconds):
                await woken.wait()
        finally:
            waiting.pop(waiter, None)

    @property
    def next_wakeup(self) -> float | None:
        """When the earliest sleeper is due, or None when nobody sleeps."""
        return min((due for due, _ in self._sleepers.values()), default=None)

    def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper that is due by then."""
        self._offset += max(0.0, seconds)
        now = self.now()
        for due, woken in [*self._sleepers.values(), *self._tickers.values()]:
            if due <= now:
                woken.set()

    def jump(self) -> bool:
        """Advance to the earliest wake-up; False when nobody sleeps."""
        due = self.next_wakeup
        if due is None:
            return False
        self.advance(due - self.now())
        return True
