"""What the loop watchdog blames: the handler on the loop's stack, not any batch in hand."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent
from aiostream_kafka.runtime.in_hand import InHand
from aiostream_kafka.runtime.watchdog import LoopWatchdog
from tests.helpers import eventually

#: How much shorter than the block its measure may be: it starts at the first ping after the
#: block began, one 0.05 s interval late at most on an idle machine, later on a loaded one.
SHORT = 0.25


def blocking_handler(seconds: float) -> None:
    time.sleep(seconds)  # what a handler that blocks the loop does


def next_blocking_handler(seconds: float) -> None:
    time.sleep(seconds)  # the next partition's handler, run before the loop gets a turn


def batch(partition: int, handler: str) -> InHand:
    return InHand("primary", "orders", partition, 10 * partition, time.monotonic(), handler)


@contextmanager
def watching(in_hand: list[InHand], **options: float) -> Iterator[list[MonitorEvent]]:
    """A watchdog on this loop (a 0.2 s threshold); yields the ``loop.blocked`` events."""
    monitor = Monitor()
    reports: list[MonitorEvent] = []
    monitor.subscribe("loop.blocked", reports.append)
    watchdog = LoopWatchdog(
        monitor, lambda: in_hand, cluster="primary", threshold=0.2, interval=0.05, **options
    )
    watchdog.start()
    try:
        yield reports
    finally:
        watchdog.stop()


async def reported(reports: list[MonitorEvent], count: int) -> None:
    await eventually(lambda: len(reports) >= count, what=f"{count} report(s)")


async def watched(in_hand: list[InHand], block: float, **options: float) -> list[MonitorEvent]:
    """Block the loop for ``block`` seconds in ``blocking_handler`` under a watchdog."""
    with watching(in_hand, **options) as reports:
        blocking_handler(block)
        await reported(reports, 1)
    return reports


async def test_the_batch_whose_handler_is_on_the_stack_is_named_not_the_others_in_hand() -> None:
    here = f"{__name__}:blocking_handler"
    [report] = await watched([batch(0, "elsewhere.awaiting"), batch(1, here)], block=0.6)

    assert (report["topic"], report["partition"], report["first_offset"]) == ("orders", 1, 10)
    assert report["handler"] == here
    assert report["culprits"] == ["orders/1"]
    assert report["duration"] >= 0.6 - SHORT
    assert report["where"] == f"{__file__}:{blocking_handler.__code__.co_firstlineno + 1} in blocking_handler"


async def test_handlers_that_block_the_loop_in_turn_are_all_named_the_first_first() -> None:
    first, then = batch(0, f"{__name__}:blocking_handler"), batch(1, f"{__name__}:next_blocking_handler")
    in_hand = [first]
    with watching(in_hand) as reports:
        blocking_handler(0.5)
        in_hand[:] = [then]  # as a listener would between two partitions, without an await
        next_blocking_handler(0.5)
        await reported(reports, 1)

    [report] = reports
    assert report["culprits"] == ["orders/0", "orders/1"]
    assert (report["partition"], report["handler"]) == (0, first.handler)
    assert report["duration"] >= 1.0 - SHORT


async def test_a_block_outside_any_handler_names_no_route_but_says_where() -> None:
    [report] = await watched([batch(0, "elsewhere.awaiting")], block=0.6)

    assert (report["topic"], report["partition"], report["handler"]) == (None, None, None)
    assert report["cluster"] == "primary"
    assert report["where"].endswith(" in blocking_handler")


async def test_a_loop_that_stays_blocked_is_logged_while_it_is(caplog: pytest.LogCaptureFixture) -> None:
    # Its event comes only once the loop runs again: a loop blocked for good has only this line.
    with caplog.at_level(logging.ERROR, logger="aiostream_kafka.watchdog"):
        await watched([batch(3, f"{__name__}:blocking_handler")], block=1.0, report_every=0.5)

    [line] = [record.getMessage() for record in caplog.records]
    assert line.startswith("the event loop has been blocked for ")
    assert f"by orders/3 (handler {__name__}:blocking_handler, from offset 30, for " in line


async def test_blocks_are_reported_at_most_once_per_interval_and_counted() -> None:
    every = 3.0
    with watching([], report_every=every) as reports:
        blocking_handler(0.5)
        await reported(reports, 1)
        seen_at = time.monotonic()  # the first report was made no later than this
        blocking_handler(0.5)  # right after the first report: only counted
        await eventually(lambda: time.monotonic() - seen_at >= every, what="the report interval to pass")
        blocking_handler(0.5)
        await reported(reports, 2)

    assert [report["blocks"] for report in reports] == [1, 2]
