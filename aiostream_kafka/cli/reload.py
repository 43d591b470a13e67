"""``run APP --reload``, for development: the app restarts when its source changes.

This process is a watcher; the app runs in a child (``run APP`` again, in its own session
so that a terminal's Ctrl-C reaches the watcher alone, which passes it on once). On a change
of a Python file in the app's source tree the child gets SIGTERM, stops gracefully (batches
in hand finish and are committed, as on any SIGTERM) and a new child imports the new code.
A child that fails (a syntax error, an import error, a crash) has printed why; the watcher
says so and waits for the next change instead of exiting. The watcher never imports the
app: a module imported here could not be imported afresh.

Files are watched with watchfiles: the kernel's change notifications (no polling), the
bursts of writes an editor makes on save gathered into one change, and version-control,
cache and virtualenv directories ignored.

The children do not write bytecode: Python trusts a ``.pyc`` whose source has the same size
and modification second, so an edit that keeps the size within a second of the last one
would run the old code.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from aiostream_kafka.cli.errors import CliError

logger = logging.getLogger("aiostream_kafka.reload")


def watched_paths(app_path: str, dirs: Sequence[str]) -> list[Path]:
    """``--reload-dir``s if given, else the app's source tree: its top-level package's
    directory, or a top-level module's own directory. Found without importing the app."""
    if dirs:
        paths = [Path(d).resolve() for d in dirs]
        missing = [str(p) for p in paths if not p.is_dir()]
        if missing:
            raise CliError(f"--reload-dir {', '.join(missing)}: no such directory")
        return paths
    top = app_path.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise CliError(
            f"module {top!r} not found, so there is nothing to watch; run from the directory that "
            f"contains it, or add that directory to PYTHONPATH"
        )
    if spec.submodule_search_locations:
        return [Path(location).resolve() for location in spec.submodule_search_locations]
    if spec.origin is None or not os.path.isfile(spec.origin):
        raise CliError(f"module {top!r} has no source file to watch; name its directory with --reload-dir")
    return [Path(spec.origin).resolve().parent]


def command(args: argparse.Namespace) -> int:
    """Watch, run the app in a child, restart it on every change; return once asked to stop."""
    if not args.reload:
        raise CliError("--reload-dir applies to --reload: add it")
    if args.processes is not None:
        raise CliError("--reload runs the app in one process, for development: drop --processes")
    try:
        import watchfiles
    except ImportError:
        raise CliError("run --reload needs watchfiles: pip install 'aiostream-kafka[reload]'") from None
    paths = watched_paths(args.app, args.reload_dir or ())
    reloader = Reloader(_child_command(args))
    reloader.install_signal_handlers()
    shown = ", ".join(str(p) for p in paths)
    logger.info("watching %s for changes (Python files); Ctrl-C stops", shown)
    reloader.start()
    for changes in watchfiles.watch(
        *paths, watch_filter=watchfiles.PythonFilter(), stop_event=reloader.stopping, raise_interrupt=False
    ):
        changed = sorted({os.path.relpath(path) for _, path in changes})
        logger.info("changed: %s; restarting the app", ", ".join(changed))
        reloader.restart()
    return reloader.finish()


class Reloader:
    """The app's child process: started, stopped gracefully, started again, its ends reported."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.stopping = threading.Event()  # the watcher was asked to stop: no more restarts
        self._child: subprocess.Popen[bytes] | None = None
        self._restarting: subprocess.Popen[bytes] | None = None  # the child a change stops
        self._signals = 0

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def start(self) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        child = subprocess.Popen(self.command, env=env, start_new_session=True)
        self._child = child
        if self.stopping.is_set():  # a signal came while it was being started: it missed it
            child.send_signal(signal.SIGTERM)
        logger.info("app started (pid %d)", child.pid)
        threading.Thread(target=self._report_end, args=(child,), daemon=True).start()

    def restart(self) -> None:
        self._stop()
        if not self.stopping.is_set():
            self.start()

    def finish(self) -> int:
        """The exit status once the watcher stops: the last child's (0 for a graceful stop)."""
        child = self._child
        if child is None:
            return 0
        if child.poll() is None:
            return child.wait()
        return 0 if self._signals else child.returncode

    def _stop(self) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            return
        logger.info("stopping the app (pid %d) gracefully", child.pid)
        self._restarting = child
        child.send_signal(signal.SIGTERM)
        child.wait()  # however long its batches take: its shutdown_timeout bounds the stop

    def _report_end(self, child: subprocess.Popen[bytes]) -> None:
        status = child.wait()
        if child is not self._restarting and not self.stopping.is_set():
            logger.warning("the app exited with status %d; the next change restarts it", status)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        """The first signal stops the app gracefully, the second at once, the third kills it."""
        self._signals += 1
        self.stopping.set()
        child = self._child
        if child is None or child.poll() is not None:
            return
        if self._signals >= 3:
            child.kill()
        else:
            child.send_signal(number)


def _child_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "aiostream_kafka", "run", args.app, "--log-level", args.log_level]
    if args.check:
        command += ["--check", "--check-timeout", str(args.check_timeout)]
    return command
