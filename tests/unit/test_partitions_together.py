"""How a listener runs the partitions of one poll side by side (``listener._together``)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from aiostream_kafka.runtime.listener import _together


async def slow(name: str, cancelled: list[str]) -> None:
    """A partition that takes its time, and notes if it was cancelled."""
    try:
        await anyio.sleep(10)
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
        with anyio.fail_after(2):
            await all_started.wait()  # only returns if the three run at the same time

    await _together(partition("a"), [partition("b"), partition("c")])

    assert sorted(started) == ["a", "b", "c"]


async def test_a_failure_cancels_the_others_and_is_raised() -> None:
    cancelled: list[str] = []

    async def failing() -> None:
        await anyio.lowlevel.checkpoint()
        raise MemoryError("out of memory")

    with anyio.fail_after(2), pytest.raises(MemoryError, match="out of memory"):
        await _together(failing(), [slow("b", cancelled), slow("c", cancelled)])

    assert sorted(cancelled) == ["b", "c"]


async def test_cancelling_the_listener_cancels_the_partitions_beside_it() -> None:
    cancelled: list[str] = []

    with anyio.move_on_after(0.1):
        await _together(slow("a", cancelled), [slow("b", cancelled)])

    assert sorted(cancelled) == ["a", "b"]
