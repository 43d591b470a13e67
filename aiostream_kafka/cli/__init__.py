"""The ``aiostream-kafka`` command: run an app, or show what it would consume and produce.

Mistakes in the app's path or in its settings are reported in one line on stderr with exit
status 2, never as a traceback: they are the user's to fix, and the message says what to
fix. Any other exception raised by the user's module keeps its traceback (exit 1), because
there the traceback is what points at the bug; any secret the app declared is masked in it,
as in every log line.

One module a job: ``parser`` (the commands and their options), ``loading`` (finding the
app), one module per command (``run`` with ``workers`` for ``--processes``, ``health``,
``check``, ``topics``, ``web``, ``info`` with ``facts``), and ``main`` here, which maps what they
raise to exit statuses.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from aiostream_kafka.cli.errors import FAILED, USAGE_ERROR, CliError
from aiostream_kafka.cli.facts import describe
from aiostream_kafka.cli.info import render_info, render_table
from aiostream_kafka.cli.loading import import_from_cwd, load_app
from aiostream_kafka.cli.logs import LOG_FORMAT, LOG_LEVELS, WORKER_LOG_FORMAT
from aiostream_kafka.cli.parser import build_parser, positive_seconds, processes
from aiostream_kafka.cli.workers import STOP_MARGIN
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.instrumentation import redaction

__all__ = [
    "FAILED",
    "LOG_FORMAT",
    "LOG_LEVELS",
    "STOP_MARGIN",
    "USAGE_ERROR",
    "WORKER_LOG_FORMAT",
    "CliError",
    "build_parser",
    "describe",
    "load_app",
    "main",
    "positive_seconds",
    "processes",
    "render_info",
    "render_table",
]

# Every command may log a secret (aiokafka's DEBUG request log, a traceback), and the user's
# module may configure logging as it imports: mask from here on, before any of that.
redaction.install()


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; returns the exit status rather than exiting, so tests can call it."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, and usage errors
        return stop.code if isinstance(stop.code, int) else USAGE_ERROR
    import_from_cwd()
    try:
        status: int = args.handler(args)
    except (CliError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as error:  # a bug: its traceback, as Python shows it, but never a secret
        print(redaction.masked("".join(traceback.format_exception(error))), file=sys.stderr, end="")
        return FAILED
    return status
