"""The ``run`` command: check the app before anything connects, then run it here or in ``--processes N``.

A stop that is not graceful exits 1 with ``error: ...`` naming why: a second signal cut it
short, or handlers ignored cancellation past ``shutdown_timeout`` (``App.stop`` gave up on
them; the process then ends from inside its event loop, which could not close).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext

from aiostream_kafka.app import App
from aiostream_kafka.cli import check, health, logs, reload, workers
from aiostream_kafka.cli.errors import FAILED, CliError
from aiostream_kafka.cli.loading import load_app
from aiostream_kafka.errors import ShutdownError
from aiostream_kafka.probes.server import AppProbes


def command(args: argparse.Namespace) -> int:
    if args.worker is not None:
        return workers.run_worker(args)
    if args.processes is None and (args.heartbeat_timeout or args.startup_timeout):
        raise CliError("--heartbeat-timeout and --startup-timeout apply to workers: add --processes N")
    logs.configure(args.log_level)
    if args.reload or args.reload_dir:
        return reload.command(args)
    app = load_app(args.app)
    nothing = _nothing_to_consume(app)  # settings and routes are checked here, before anything connects
    if nothing:
        raise CliError(nothing)
    if args.check:
        check.report(app, args.check_timeout)
    if args.processes is not None:
        return workers.run_workers(app, args)
    try:
        with health.serving(AppProbes(app.health), args.health) if args.health else nullcontext():
            app.run()
    except KeyboardInterrupt:  # a Ctrl-C before the app's own signal handling is in place
        return 130
    except ShutdownError as error:  # a second signal cut the stop short
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    return 0


def _nothing_to_consume(app: App) -> str | None:
    """Why ``run`` would start and stop at once, saying nothing: no active route to consume."""
    topology = app.topology
    if topology.subscription_groups:
        return None
    inactive = len(topology.inactive)
    what = f"all {inactive} of its routes are inactive (active=False)" if inactive else "it has no routes"
    return (
        f"app {app.name!r} has nothing to consume: {what} and no jobs to consume; declare one with "
        f'@app.route("topic"), app.routes.topic(...) or app.jobs.consume("topic"). An app that only '
        f"produces is used from your own code, not run by aiostream-kafka run"
    )
