"""Logs what the Monitor sees, so that nothing goes wrong silently.

One line per notable event; the event's fields are also on the record (``extra``), so a
JSON formatter gets ``record.cluster``, ``record.topic``, ``record.partition``,
``record.duration`` and the rest as fields. ``record.event`` is the event name.
"""

from __future__ import annotations

import logging
from typing import Any

from aiostream_kafka.instrumentation.monitor import EVENTS, Monitor, MonitorEvent

log = logging.getLogger("aiostream_kafka")

_LEVELS = {
    "listener.crashed": logging.ERROR,
    "batch.failed": logging.ERROR,
    "fetch.failed": logging.ERROR,
    "batch.slow": logging.WARNING,
    "fetch.recovered": logging.INFO,
    "cluster.unreachable": logging.ERROR,
    "cluster.reachable": logging.INFO,
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
    "transaction.aborted": logging.WARNING,
    "loop.blocked": logging.WARNING,
    "schedule.assigned": logging.INFO,
    "schedule.revoked": logging.INFO,
    "schedule.tick": logging.INFO,
    "messages.expired": logging.INFO,  # stale messages dropped: notable, once per batch
}

#: One of these per message produced: far too many for a log, whatever the level; the hook
#: before a batch is filled (``batch.produced`` says what became of it); and the tally of
#: every request batch (``records.sent``: one a message, at a low rate).
PER_MESSAGE = frozenset({"message.producing", "message.produced", "batch.producing", "records.sent"})

#: Fields that are objects for subscribers, not text for a log line.
_NOT_LOGGED = frozenset({"error", "messages", "headers", "context"})
#: Events whose error was logged with its traceback by the event before them: a message is
#: dead-lettered right after its last ``batch.failed``, which shows the traceback once.
_TRACEBACK_SHOWN = frozenset({"dlq.dispatched"})
#: LogRecord's own attributes, which ``extra`` may not overwrite.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class LoggingListener:
    """Errors at ERROR, lifecycle at INFO, retries and DLQ at WARNING, the hot path at DEBUG."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger

    def install(self, monitor: Monitor) -> None:
        for name in sorted(EVENTS - PER_MESSAGE):
            monitor.subscribe(name, self)

    def __call__(self, event: MonitorEvent) -> None:
        # A transient fault (a cluster away) is expected to pass: a warning, with no traceback.
        transient = event.get("transient") is True
        level = logging.WARNING if transient else _LEVELS.get(event.name, logging.DEBUG)
        if not self.logger.isEnabledFor(level):
            return
        fields = {k: v for k, v in event.payload.items() if k not in _NOT_LOGGED}
        error = event.get("error")
        message = " ".join([event.name, *(f"{k}={v}" for k, v in fields.items())])
        if isinstance(error, BaseException):
            message += f" error={type(error).__name__}: {error}"
        extra: dict[str, Any] = {"event": event.name}
        extra.update((k if k not in _RESERVED else f"event_{k}", v) for k, v in fields.items())
        traceback = isinstance(error, BaseException) and not transient and event.name not in _TRACEBACK_SHOWN
        self.logger.log(level, message, exc_info=error if traceback else None, extra=extra)
