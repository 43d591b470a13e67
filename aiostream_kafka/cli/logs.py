"""The log levels ``--log-level`` offers, and the line format of the commands that log."""

from __future__ import annotations

import logging

from aiostream_kafka.instrumentation.output import LOG_FORMAT, LOG_LEVELS, configure_logging

__all__ = ["LOG_FORMAT", "LOG_LEVELS", "WORKER_LOG_FORMAT", "configure"]

#: A worker's lines say which worker wrote them: they share the parent's output.
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)-7s [worker-{number}] %(name)s: %(message)s"


def configure(level: str, worker: int | None = None) -> None:
    """Log at ``level`` (one of LOG_LEVELS) to stderr, a worker's lines carrying its number;
    every library's lines at that level too, but aiokafka's INFO only at debug."""
    line = LOG_FORMAT if worker is None else WORKER_LOG_FORMAT.format(number=worker)
    logging.basicConfig(level=level.upper(), format=line)
    configure_logging(level, format=line)
