"""The heartbeat between a worker process and the parent that supervises it.

A pipe, one byte per message: the worker writes ``READY`` once its app has started,
``JOINED`` once each of its consumers has joined its group and been given its partitions
(what "ready" means to whoever reads the parent's log), and ``BEAT`` every ``interval``
seconds *from its event loop*. Beating from the loop (not from a
thread) is the point: a handler that blocks the loop (``time.sleep``, a CPU-bound loop, a
lock that never comes) stops the beats although the process is alive, and that is the
hang the parent must see. The parent drains the pipe without blocking and ``liveness``
decides whether a worker is overdue.

A pipe rather than touching a file: nothing on disk, and it breaks by itself when the
parent dies, which is how an orphaned worker notices that nobody supervises it any more
and stops gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent


class _Groups(Protocol):
    @property
    def subscription_groups(self) -> Sequence[object]: ...


class Servable(Protocol):
    """What a worker serves: the App, as far as the heartbeat needs to know it."""

    @property
    def monitor(self) -> Monitor: ...

    @property
    def topology(self) -> _Groups: ...

    async def serve(self) -> None: ...


READY = b"r"
JOINED = b"j"
BEAT = b"h"


class HeartbeatSender:
    """The worker's end: ``ready()`` once, then ``beat()`` as a task on the app's loop."""

    def __init__(self, fd: int, interval: float) -> None:
        os.set_blocking(fd, False)  # a parent that reads late must never stall the loop
        self.fd = fd
        self.interval = interval

    async def serve(self, app: Servable) -> None:
        """A worker's whole life: the app served as ``App.run`` serves it, beating meanwhile."""
        app.monitor.subscribe("app.started", lambda _event: self.ready())
        groups = len(app.topology.subscription_groups)
        joined: set[tuple[object, ...]] = set()

        def assigned(event: MonitorEvent) -> None:
            before = len(joined)
            joined.add((event["cluster"], event["group"], event["subscription_group"]))
            if before < groups <= len(joined):
                self._send(JOINED)

        app.monitor.subscribe("partitions.assigned", assigned)
        beating = asyncio.create_task(self.beat(), name="heartbeat")
        try:
            await app.serve()
        finally:
            beating.cancel()

    def ready(self) -> None:
        self._send(READY)

    async def beat(self) -> None:
        """Beat until cancelled; when the parent is gone, stop the app as SIGTERM would."""
        while True:
            if not self._send(BEAT):
                signal.raise_signal(signal.SIGTERM)
                return
            await asyncio.sleep(self.interval)

    def _send(self, message: bytes) -> bool:
        """False once the parent has gone (the pipe is broken)."""
        try:
            os.write(self.fd, message)
        except BlockingIOError:  # the pipe is full of unread beats: the parent knows we live
            return True
        except BrokenPipeError:
            return False
        return True


class HeartbeatReader:
    """The parent's end of one worker's pipe: when it last beat, and whether it is ready."""

    def __init__(self, fd: int, started_at: float) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.started_at = started_at
        self.last_beat = started_at
        self.ready_at: float | None = None  # its app started
        self.joined_at: float | None = None  # its consumers joined their groups

    def drain(self, now: float) -> None:
        """Read whatever the worker has written since the last call; never blocks."""
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return
            if not data:  # the worker closed its end: it is exiting; its exit status will tell
                return
            self.last_beat = now
            if self.ready_at is None and READY in data:
                self.ready_at = now
            if self.joined_at is None and JOINED in data:
                self.joined_at = now

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class Liveness:
    """How long a worker may take to start, and to go without a beat once started."""

    startup_timeout: float = 60.0
    heartbeat_timeout: float = 30.0

    @property
    def interval(self) -> float:
        """How often workers beat: a few beats fit in the timeout, so one late beat is no hang."""
        return min(2.0, self.heartbeat_timeout / 4)

    def verdict(self, heartbeat: HeartbeatReader, now: float) -> str | None:
        """None while the worker is fine; otherwise why it must be replaced."""
        return overdue(
            started_at=heartbeat.started_at,
            ready_at=heartbeat.ready_at,
            last_beat=heartbeat.last_beat,
            now=now,
            startup_timeout=self.startup_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
        )


def overdue(
    *,
    started_at: float,
    ready_at: float | None,
    last_beat: float,
    now: float,
    startup_timeout: float,
    heartbeat_timeout: float,
) -> str | None:
    """Why a worker must be replaced, or None.

    Until it is ready (its app started) only ``startup_timeout`` counts: importing the app
    and connecting are allowed to be slow, and the loop that beats may not run yet. Once
    ready, a worker whose last beat is older than ``heartbeat_timeout`` is hung.
    """
    if ready_at is None:
        if now - started_at > startup_timeout:
            return f"did not start its app within {startup_timeout:g}s"
        return None
    silent = now - last_beat
    if silent > heartbeat_timeout:
        return f"sent no heartbeat for {silent:.1f}s (timeout {heartbeat_timeout:g}s): its loop is stuck"
    return None
