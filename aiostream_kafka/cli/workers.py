"""``run APP --processes N``: this process as the parent of N workers (runtime/workers.py), and each worker.

The app is checked in the parent, once, so that its mistakes are still one line and exit 2;
each worker is this command again in a worker mode the parent alone uses. A pool that gives
up exits 1 with the reason as its last line. With ``--health``, each worker serves its probes
on a Unix socket in a directory of the parent's, and the parent answers for them all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import nullcontext

import anyio

from aiostream_kafka.app import App, exit_if_given_up
from aiostream_kafka.cli import health, logs
from aiostream_kafka.cli.errors import FAILED, CliError
from aiostream_kafka.cli.loading import load_app
from aiostream_kafka.errors import ShutdownError
from aiostream_kafka.probes.health import LoopTicker
from aiostream_kafka.probes.pool import PoolProbes
from aiostream_kafka.probes.server import AppProbes
from aiostream_kafka.runtime.heartbeat import HeartbeatSender, Liveness
from aiostream_kafka.runtime.workers import RestartPolicy, WorkerPool

#: Beyond the app's shutdown_timeout, what a worker's stop may take: the last commit,
#: leaving the group, flushing and closing producers; for handlers that ignore cancellation,
#: app.CANCEL_GRACE and app.LEAVE_TIMEOUT (7 s), after which the worker exits 1 by itself.
STOP_MARGIN = 10.0


def run_workers(app: App, args: argparse.Namespace) -> int:
    """The parent of ``--processes N``: the app was validated here once, the workers run it."""

    sockets = tempfile.mkdtemp(prefix="aiostream-kafka-probes-") if args.health else None

    def socket_of(number: int) -> str:
        assert sockets is not None
        return os.path.join(sockets, f"worker-{number}.sock")

    def command(number: int, heartbeat_fd: int, interval: float) -> list[str]:
        return [
            sys.executable, "-m", "aiostream_kafka", "run", args.app, "--log-level", args.log_level,
            "--worker", str(number),
            "--heartbeat-fd", str(heartbeat_fd),
            "--heartbeat-interval", str(interval),
            *(["--health-socket", socket_of(number)] if sockets else []),
        ]  # fmt: skip

    pool = WorkerPool(
        command,
        args.processes,
        liveness=Liveness(
            startup_timeout=args.startup_timeout or Liveness.startup_timeout,
            heartbeat_timeout=args.heartbeat_timeout or Liveness.heartbeat_timeout,
        ),
        restarts=RestartPolicy(app.restart_backoff),
        stop_timeout=app.shutdown_timeout + STOP_MARGIN,
    )
    ticker = LoopTicker()

    async def run() -> str | None:
        ticker.start()
        try:
            return await pool.run()
        finally:
            ticker.stop()

    try:
        if sockets is None:
            failure = anyio.run(run, backend="asyncio")
        else:
            with health.serving(PoolProbes(pool, socket_of, ticker), args.health):
                failure = anyio.run(run, backend="asyncio")
    finally:
        if sockets is not None:
            shutil.rmtree(sockets, ignore_errors=True)
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return FAILED
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """One of the parent's workers: the app, served next to the heartbeat the parent watches."""
    if args.heartbeat_fd is None:
        raise CliError("--worker is how a --processes parent starts its workers; run APP --processes N")
    logs.configure(args.log_level, worker=args.worker)
    app = load_app(args.app)
    heartbeat = HeartbeatSender(args.heartbeat_fd, args.heartbeat_interval)
    probes = (
        health.serving(AppProbes(app.health), args.health_socket) if args.health_socket else nullcontext()
    )
    try:
        with probes:
            anyio.run(exit_if_given_up, lambda: heartbeat.serve(app), backend="asyncio")
    except KeyboardInterrupt:
        return 130
    except ShutdownError as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    return 0
