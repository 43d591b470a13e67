"""The framework's log output, set up in one line where the CLI is not the one running the app.

An app embedded in a web server (uvicorn configures only its own loggers) or a script has
no handler on the root logger: the framework's INFO events vanish, and its warnings reach
Python's last-resort handler without time, level or logger. ``configure_logging`` gives
such an app the lines ``aiostream-kafka run`` prints. aiokafka's own INFO (every join,
sync and coordinator lookup of every consumer group) says what the framework's events
already say, so it is shown only at DEBUG.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from aiostream_kafka.errors import ConfigError

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Output(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """The handler ``configure_logging`` adds, told apart from the app's own ones."""


def configure_logging(level: str = "INFO", *, format: str = LOG_FORMAT, stream: TextIO | None = None) -> None:
    """Log the framework's events at ``level`` as the CLI does: ``time LEVEL logger: message``.

    Adds a handler on the root logger (to ``stream``, stderr by default) unless the root
    logger has one already: an app that configured its logging keeps its own format, and
    this only sets the levels. Calling it again changes the level, never adds a second handler.
    """
    number = _level(level)
    root = logging.getLogger()
    if not root.handlers:
        output = _Output(stream if stream is not None else sys.stderr)
        output.setFormatter(logging.Formatter(format))
        root.addHandler(output)
    else:
        for handler in root.handlers:
            if isinstance(handler, _Output):
                handler.setFormatter(logging.Formatter(format))
                if stream is not None:
                    handler.setStream(stream)
    logging.getLogger("aiostream_kafka").setLevel(number)
    logging.getLogger("aiokafka").setLevel(
        number if number <= logging.DEBUG else max(number, logging.WARNING)
    )


def _level(level: str) -> int:
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise ConfigError(f"configure_logging(level={level!r}): one of {', '.join(LOG_LEVELS)}")
    return int(logging.getLevelName(level.upper()))  # a known name gives its number
