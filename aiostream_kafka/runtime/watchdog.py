"""The loop watchdog: notices that something blocks the event loop, and names the handler.

A handler that blocks the loop (``time.sleep``, CPU-bound work, a blocking client) stops
everything else in the process: aiokafka's heartbeats and commits, the other partitions,
the producers. Kafka then sees a dead member, rebalances and redelivers, and all the logs
say is "Heartbeat session expired" and ``CommitFailedError``. Only a thread can see the
loop stand still, so this one asks the loop to run a callback every ``interval`` and
measures how late it runs.

While a ping is overdue by ``threshold`` the loop is blocked: at every tick the thread reads
the loop thread's stack and the batches in hand (``Listener.in_hand``), and takes the
batches whose handler (``module:qualname``) is on that stack as culprits; one block may
have several (one poll's partitions, each handler blocking in turn before the loop gets
a turn). Once the loop runs again,
``loop.blocked`` is emitted there, on the loop, like every other event (at most one per
``report_every`` seconds; ``blocks`` counts those in between). A loop blocked for longer
is also logged from the thread every ``report_every`` seconds, since its event would come
only when (if) the loop runs again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.runtime.in_hand import InHand

log = logging.getLogger("aiostream_kafka.watchdog")

#: How often the thread pings the loop (seconds): the resolution of what it measures.
INTERVAL = 0.25
#: At most one report per this many seconds, events and the thread's own lines alike.
REPORT_EVERY = 10.0
#: How deep into the loop thread's stack to look for a handler.
MAX_DEPTH = 200


@dataclass(frozen=True)
class Blocker:
    """Who held the loop, as seen while it was blocked."""

    where: str  # the innermost frame when first seen: "path/to/module.py:12 in handle"
    culprits: tuple[InHand, ...]  # the batches whose handler was on the stack, first seen first

    def then(self, later: Blocker) -> Blocker:
        """This block, seen again later: the culprits of both."""
        return Blocker(self.where, self.culprits + tuple(b for b in later.culprits if b not in self.culprits))

    def describe(self) -> str:
        """``by <batch> at <where>``: who held the loop, as the thread's lines say it."""
        return _culprit(self)


class LoopWatchdog:
    def __init__(
        self,
        monitor: Monitor,
        in_hand: Callable[[], list[InHand]],
        *,
        cluster: str,
        threshold: float = 1.0,
        interval: float = INTERVAL,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self._monitor = monitor
        self._in_hand = in_hand
        self._cluster = cluster
        self._threshold = threshold
        self._interval = interval
        self._report_every = report_every
        self._lock = threading.Lock()
        self._sent: float | None = None  # when the unanswered ping was sent
        self._blocker: Blocker | None = None  # seen during the current block
        self._blocks = 0  # blocks not reported yet
        self._reported = -report_every  # monotonic time of the last event
        self._logged = -report_every  # ... and of the thread's last line
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def start(self) -> None:
        """Watch the running loop, from a daemon thread (it never keeps a process alive)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="aiostream-kafka loop watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)  # it wakes at once from its wait
            self._thread = None

    def blocker(self) -> Blocker | None:
        """Who holds the loop now, as the thread last saw it; None while it runs (any thread)."""
        with self._lock:
            return self._blocker

    # --- the thread ----------------------------------------------------------------------

    def _watch(self) -> None:
        assert self._loop is not None
        while not self._stopped.wait(self._interval):
            now = time.monotonic()
            with self._lock:
                sent = self._sent
                if sent is None:
                    self._sent = now
            if sent is None:
                try:
                    self._loop.call_soon_threadsafe(self._answered, now)
                except RuntimeError:  # the loop is closed: nothing left to watch
                    return
                continue
            blocked = now - sent
            if blocked <= self._threshold:
                continue
            seen = self._who()
            blocker = self._blocker.then(seen) if self._blocker else seen
            with self._lock:
                if self._sent != sent:  # the loop answered meanwhile: that block is over
                    continue
                self._blocker = blocker
            if blocked >= self._report_every and now - self._logged >= self._report_every:
                self._logged = now
                log.error("the event loop has been blocked for %.1fs so far %s", blocked, _culprit(blocker))

    def _who(self) -> Blocker:
        frame = sys._current_frames().get(self._loop_thread)
        names = []
        where = "?"
        depth = 0
        while frame is not None and depth < MAX_DEPTH:
            if depth == 0:
                where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            names.append(_qualified(frame))
            frame, depth = frame.f_back, depth + 1
        culprits = tuple(
            batch
            for batch in self._in_hand()
            if any(name == batch.handler or name.startswith(batch.handler + ".") for name in names)
        )
        return Blocker(where, culprits)

    # --- the loop ------------------------------------------------------------------------

    def _answered(self, sent: float) -> None:
        now = time.monotonic()
        blocked = now - sent
        with self._lock:
            blocker, self._blocker, self._sent = self._blocker, None, None
            if blocked <= self._threshold:
                return
            self._blocks += 1
            if now - self._reported < self._report_every:
                return  # counted in the next report's blocks
            blocks, self._blocks, self._reported = self._blocks, 0, now
        culprits = blocker.culprits if blocker else ()
        first = culprits[0] if culprits else None
        self._monitor.emit(
            "loop.blocked",
            cluster=first.cluster if first else self._cluster,
            topic=first.topic if first else None,
            partition=first.partition if first else None,
            first_offset=first.first_offset if first else None,
            handler=first.handler if first else None,
            duration=round(blocked, 3),
            where=blocker.where if blocker else None,
            culprits=[f"{batch.topic}/{batch.partition}" for batch in culprits],
            blocks=blocks,
        )


def _qualified(frame: FrameType) -> str:
    """The running function's ``module:qualname``, as ``Route.handler_name`` names handlers."""
    code = frame.f_code
    return f"{frame.f_globals.get('__name__', '?')}:{getattr(code, 'co_qualname', code.co_name)}"


def _culprit(blocker: Blocker) -> str:
    if not blocker.culprits:
        return f"at {blocker.where} (no handler of a batch in hand is on the loop's stack)"
    return f"by {'; '.join(batch.describe() for batch in blocker.culprits)} at {blocker.where}"
