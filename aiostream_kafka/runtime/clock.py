"""The app's sense of time: what retry backoffs, timed pauses, delayed jobs and periodic
reports wait on.

It lives on the app (``app.clock``) rather than being ``time.time`` and ``anyio.sleep`` called
directly, so the testing harness can swap in a clock that skips waits nobody should sit
through in a unit test, while the code that decides *how long* to wait stays the same.
"""

from __future__ import annotations

import time

import anyio


class Clock:
    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def tick(self, seconds: float) -> None:
        """The wait between two rounds of a chore that repeats for as long as the app runs
        (status reports). Apart from ``sleep`` because such a wait is never work left to do:
        the harness's clock passes it only when a test moves time on."""
        await anyio.sleep(seconds)

    async def tick_until(self, when: float) -> None:
        """As ``tick``, until a moment (epoch seconds) rather than for a length of time: a
        recurring job's next tick, which a virtual clock moved exactly to has reached."""
        await anyio.sleep(max(0.0, when - self.now()))
