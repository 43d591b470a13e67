"""Telling a cancellation of ours from a ``CancelledError`` that user code raised.

asyncio has one exception for both: the task being cancelled (a stop, a revoked partition,
a timeout), and code that raises ``CancelledError`` itself or awaits a future someone else
cancelled. Treating the second like the first stopped all consumption silently; it is a
handler failure. A real cancellation leaves a mark on the task (``Task.cancelling()``,
Python 3.11+) or on the enclosing anyio cancel scope (an effective deadline of -inf).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection
from typing import Any

import anyio

from aiostream_kafka.errors import HandlerCancelledError


def being_cancelled() -> bool:
    """Whether the current task has really been asked to stop."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling():
        return True
    return anyio.current_effective_deadline() == -math.inf


def not_cancelled_by_us(handler_name: str, cancelled: asyncio.CancelledError) -> HandlerCancelledError:
    """A handler raised CancelledError while nothing cancelled it: a failure, never a silent stop."""
    failure = HandlerCancelledError(f"{handler_name} raised CancelledError, but nothing cancelled it")
    failure.__cause__ = cancelled
    return failure


async def cancel_and_wait(tasks: Collection[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait for them all, shielded (the caller is usually being cancelled
    itself); their errors are retrieved, so that asyncio does not report them as lost. The listener's
    ``_together`` and the virtual partitions' use it."""
    for task in tasks:
        task.cancel()
    with anyio.CancelScope(shield=True):
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()
