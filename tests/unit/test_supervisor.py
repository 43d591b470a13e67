"""The Supervisor's restarts: what a crash report names, and how long a crash loop waits."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace

import anyio
import pytest

from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.supervisor import Supervisor

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class CrashesAfterPolling:
    """A listener that polls (so it looks healthy) and crashes at once, ``crashes`` times."""

    def __init__(self, crashes: int, error: BaseException) -> None:
        self.group = SimpleNamespace(cluster=SimpleNamespace(name="primary"), name="default")
        self.healthy = False
        self.runs = 0
        self._crashes = crashes
        self._error = error
        self.done = anyio.Event()

    async def run(self) -> None:
        self.runs += 1
        self.healthy = True
        if self.runs <= self._crashes:
            raise self._error
        self.done.set()

    def request_stop(self) -> None:
        pass


async def supervise(listener: CrashesAfterPolling) -> list[MonitorEvent]:
    monitor = Monitor()
    crashes: list[MonitorEvent] = []
    monitor.subscribe("listener.crashed", crashes.append)
    supervisor = Supervisor([listener], monitor, Backoff(initial=0.01, maximum=0.04, jitter=0))  # type: ignore[list-item]
    await supervisor.run()
    return crashes


async def test_a_listener_that_crashes_after_every_first_poll_waits_longer_each_time() -> None:
    crashes = await supervise(CrashesAfterPolling(4, RuntimeError("bad batch")))

    assert [e["restart_in"] for e in crashes] == [0.01, 0.02, 0.04, 0.04]
    assert [e["failures"] for e in crashes] == [1, 2, 3, 4]


@pytest.mark.parametrize("depth", [1, 2])
async def test_a_crash_report_names_the_error_inside_task_group_wrappers(depth: int) -> None:
    error: Exception = ValueError("the real cause")
    for _ in range(depth):
        error = ExceptionGroup("unhandled errors in a TaskGroup", [error])

    crashes = await supervise(CrashesAfterPolling(1, error))

    assert repr(crashes[0]["error"]) == "ValueError('the real cause')"


async def test_a_listener_that_ends_in_a_cancellation_nobody_asked_for_is_restarted() -> None:
    listener = CrashesAfterPolling(1, asyncio.CancelledError())

    crashes = await supervise(listener)

    assert listener.runs == 2
    assert "CancelledError nobody asked for" in str(crashes[0]["error"])
