"""Logs what the Monitor sees, so that nothing goes wrong silently."""

from __future__ import annotations

import logging

from aiostream_kafka.instrumentation.monitor import ALL, Event, Monitor

log = logging.getLogger("aiostream_kafka")

_LEVELS = {
    "listener.crashed": logging.ERROR,
    "batch.failed": logging.ERROR,
    "produce.failed": logging.ERROR,
    "error.occurred": logging.ERROR,
    "app.started": logging.INFO,
    "app.stopping": logging.INFO,
    "app.stopped": logging.INFO,
    "listener.started": logging.INFO,
    "listener.restarted": logging.INFO,
    "listener.stopped": logging.INFO,
    "partitions.assigned": logging.INFO,
    "partitions.revoked": logging.INFO,
    "retry.scheduled": logging.WARNING,
    "dlq.dispatched": logging.WARNING,
}


class LoggingListener:
    """Subscribes to every event; errors at ERROR, lifecycle at INFO, the hot path at DEBUG."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger

    def install(self, monitor: Monitor) -> None:
        monitor.subscribe(ALL, self)

    def __call__(self, event: Event) -> None:
        level = _LEVELS.get(event.name, logging.DEBUG)
        if not self.logger.isEnabledFor(level):
            return
        error = event.get("error")
        details = " ".join(f"{k}={v}" for k, v in event.payload.items() if k != "error")
        message = f"{event.name} {details}"
        if isinstance(error, BaseException):
            message += f" error={type(error).__name__}: {error}"
        self.logger.log(level, message, exc_info=error if isinstance(error, BaseException) else None)
