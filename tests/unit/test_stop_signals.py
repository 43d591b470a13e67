"""How ``App.serve`` reads SIGINT/SIGTERM: the first stops gracefully, a later one means now."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

from aiostream_kafka.runtime.signals import StopSignals


async def delivered(*signals: signal.Signals) -> AsyncIterator[signal.Signals]:
    for received in signals:
        yield received


async def test_the_first_signal_requests_the_stop_and_a_later_one_means_now() -> None:
    hurried: list[signal.Signals] = []
    signals = StopSignals(on_repeat=hurried.append, window=0)

    await signals.watch(delivered(signal.SIGTERM, signal.SIGINT, signal.SIGTERM))

    assert signals.requested.is_set()
    assert signals.first == signal.SIGTERM
    assert hurried == [signal.SIGINT]  # once: the stop is already as quick as it gets
    assert signals.repeated == signal.SIGINT


async def test_a_sigterm_within_the_window_is_the_same_stop_delivered_twice() -> None:
    # timeout(1) signals its child, then its whole process group: the app gets SIGTERM twice at once.
    hurried: list[signal.Signals] = []
    signals = StopSignals(on_repeat=hurried.append, window=60)

    await signals.watch(delivered(signal.SIGTERM, signal.SIGTERM))

    assert signals.requested.is_set()
    assert hurried == []
    assert signals.repeated is None


async def test_ctrl_c_again_means_now_however_soon() -> None:
    hurried: list[signal.Signals] = []
    signals = StopSignals(on_repeat=hurried.append, window=60)

    await signals.watch(delivered(signal.SIGINT, signal.SIGINT))

    assert hurried == [signal.SIGINT]
