"""Noticing batches that hold a handler for long, so that they are reported and do not hold
up the other partitions of their poll."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import anyio

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.runtime.in_flight import InFlight
from aiostream_kafka.runtime.pauses import Pauses


async def watch_slow_batches(
    after: float,
    *,
    in_flight: InFlight,
    pauses: Pauses,
    handlers: Mapping[str, str],
    monitor: Monitor,
    tags: dict[str, str],
    held_up: Callable[[], None],
) -> None:
    """Report every batch in hand for longer than ``after`` seconds, once (``batch.slow``), and
    call ``held_up`` while such a batch belongs to the poll in hand (not one set aside yet)."""
    while True:
        await anyio.sleep(min(1.0, after / 4))
        now = time.monotonic()
        slow = {tp for tp, began in in_flight.started.items() if now - began >= after} - in_flight.slow
        for tp in sorted(slow):
            in_flight.slow.add(tp)
            batch = in_flight.current.get(tp)
            monitor.emit(
                "batch.slow",
                **tags,
                topic=tp.topic,
                partition=tp.partition,
                offset=batch.first_offset if batch is not None else None,
                duration=round(now - in_flight.started.get(tp, now), 3),
                handler=handlers[tp.topic],
            )
        if any(not pauses.is_set_aside(tp) for tp in slow):
            held_up()
