"""Stop signals for ``App.serve``: the first SIGINT/SIGTERM asks for a graceful stop; another
one during that stop means now (batches in hand are cancelled, the exit is a failure).

A SIGTERM within ``REPEAT_WINDOW`` of the first signal is the same request delivered twice,
not a person in a hurry: timeout(1) signals its child and then its whole process group, so
an app run under it gets SIGTERM twice at once, and would otherwise never stop gracefully.
A second SIGINT is always a person (Ctrl-C again), as for the ``--processes`` parent.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import AsyncIterator, Callable

import anyio

log = logging.getLogger("aiostream_kafka")

#: Seconds after the first signal during which a SIGTERM counts as the same one.
REPEAT_WINDOW = 1.0


class StopSignals:
    """Watches a signal receiver: ``requested`` is set on the first signal, ``on_repeat`` is
    called once for the first repeat that is a SIGINT, or comes ``window`` seconds or more
    after it."""

    def __init__(self, on_repeat: Callable[[signal.Signals], None], window: float = REPEAT_WINDOW) -> None:
        self.requested = anyio.Event()
        self.first: signal.Signals | None = None
        self.repeated: signal.Signals | None = None
        self._on_repeat = on_repeat
        self._window = window

    async def watch(self, signals: AsyncIterator[signal.Signals]) -> None:
        first_at = 0.0
        async for received in signals:
            now = time.monotonic()
            if self.first is None:
                self.first, first_at = received, now
                self.requested.set()
            elif self.repeated is not None:
                continue
            elif received == signal.SIGTERM and now - first_at < self._window:
                log.info("%s again within %gs: the same stop", received.name, self._window)
            else:
                self.repeated = received
                log.warning(
                    "%s again: stopping at once; the batches in hand are not committed", received.name
                )
                self._on_repeat(received)
