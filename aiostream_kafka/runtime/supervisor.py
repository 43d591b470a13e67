"""The Supervisor: every Listener in one anyio task group, restarted with backoff when it crashes.

A listener that crashes (its cluster is down, a hook raised, a bug) is reported and started
again after an exponential backoff; the others never notice. The backoff starts over once
a restarted listener has polled successfully and kept running for the longest backoff: one
that crashes right after every first poll is in a crash loop, and waits longer each time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import anyio

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.processing.policy import is_fatal
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.cancellation import being_cancelled
from aiostream_kafka.runtime.in_hand import InHand
from aiostream_kafka.runtime.listener import Listener


class Supervisor:
    def __init__(self, listeners: Sequence[Listener], monitor: Monitor, restart_backoff: Backoff) -> None:
        self.listeners = tuple(listeners)
        self._monitor = monitor
        self._backoff = restart_backoff
        self._stop = anyio.Event()

    async def run(self) -> None:
        """Run until ``request_stop`` and every listener has drained."""
        async with anyio.create_task_group() as group:
            for listener in self.listeners:
                group.start_soon(self._supervise, listener)

    def request_stop(self) -> None:
        self._stop.set()
        for listener in self.listeners:
            listener.request_stop()

    def in_hand(self) -> list[InHand]:
        """Every listener's batches in its handlers' hands (see ``Listener.in_hand``)."""
        return [batch for listener in self.listeners for batch in listener.in_hand()]

    async def leave(self) -> None:
        """Every listener leaves its group now (``Listener.leave``; those that ended already have)."""
        for listener in self.listeners:
            await listener.leave()

    async def _supervise(self, listener: Listener) -> None:
        failures = 0
        tags = {"cluster": listener.group.cluster, "subscription_group": listener.group.name}
        while not self._stop.is_set():
            listener.healthy = False
            began = time.monotonic()
            try:
                try:
                    await listener.run()
                except asyncio.CancelledError as cancelled:
                    if being_cancelled():
                        raise
                    unasked = "the listener ended with a CancelledError nobody asked for"
                    raise RuntimeError(unasked) from cancelled
            except Exception as error:
                if is_fatal(error):
                    raise  # the process is in trouble: restarting would only hide it
                settled = listener.healthy and time.monotonic() - began >= self._backoff.maximum
                failures = 1 if settled else failures + 1
                delay = self._backoff.delay(failures)
                self._monitor.emit(
                    "listener.crashed",
                    **tags,
                    error=root_cause(error),
                    failures=failures,
                    restart_in=round(delay, 3),
                )
                with anyio.move_on_after(delay):
                    await self._stop.wait()
                if not self._stop.is_set():
                    self._monitor.emit("listener.restarted", **tags, failures=failures)
            else:
                return


def root_cause(error: Exception) -> Exception:
    """The one error inside task-group wrappers, which would otherwise be all a report says
    ("unhandled errors in a TaskGroup (1 sub-exception)")."""
    inner: Sequence[BaseException] = getattr(error, "exceptions", ())
    while len(inner) == 1 and isinstance(inner[0], Exception):
        error = inner[0]
        inner = getattr(error, "exceptions", ())
    return error
