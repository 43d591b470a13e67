"""Calling a Consumer's lifecycle hooks, whose failure must not stop a listener."""

from __future__ import annotations

from collections.abc import Awaitable

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.processing.policy import is_fatal


async def call_hook(hook: Awaitable[None], monitor: Monitor, tags: dict[str, str]) -> None:
    """Run a user hook (``revoked``, ``shutdown``); report its failure instead of raising it."""
    try:
        await hook
    except Exception as error:
        if is_fatal(error):
            raise
        monitor.emit("error.occurred", **tags, type="consumer.hook", error=error)
