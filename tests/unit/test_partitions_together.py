"""How a listener runs the partitions of one poll side by side (``listener._together``)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from aiostream_kafka.runtime.listener import _together
from tests.helpers import within


async def endless(name: str, cancelled: list[str], started: list[str] | None = None) -> None:
    """A partition that would never finish by itself, and notes if it was cancelled."""
    if started is not None:
        started.append(name)
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        cancelled.append(name)
        raise


async def test_every_partition_runs_and_they_overlap() -> None:
    started: list[str] = []
    all_started = anyio.Event()

    async def partition(name: str) -> None:
        started.append(name)
        if len(started) == 3:
            all_started.set()
        await all_started.wait()  # only returns if the three run at the same time

    with within(10, "the three partitions to run at the same time"):
        await _together(partition("a"), [partition("b"), partition("c")])

    assert sorted(started) == ["a", "b", "c"]


async def test_a_failure_cancels_the_others_and_is_raised() -> None:
    cancelled: list[str] = []

    async def failing() -> None:
        await anyio.lowlevel.checkpoint()
        raise MemoryError("out of memory")

    with (
        within(10, "the failure to end the others"),
        pytest.raises(MemoryError, match="out of memory"),
    ):
        await _together(failing(), [endless("b", cancelled), endless("c", cancelled)])

    assert sorted(cancelled) == ["b", "c"]


async def test_cancelling_the_listener_cancels_the_partitions_beside_it() -> None:
    cancelled: list[str] = []
    started: list[str] = []

    async def listener() -> None:
        await _together(endless("a", cancelled, started), [endless("b", cancelled, started)])

    with within(10, "the partitions to be cancelled"):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(listener)
            while len(started) < 2:  # both running, then the listener is cancelled
                await anyio.lowlevel.checkpoint()
            tasks.cancel_scope.cancel()

    assert sorted(cancelled) == ["a", "b"]
