"""The ``check`` command: every cluster answers and every topic is on its cluster.

What is wrong is a CheckError (a ConfigError), so ``main`` prints it in one line and exits 2.
"""

from __future__ import annotations

import argparse

import anyio

from aiostream_kafka.app import App
from aiostream_kafka.cli.loading import load_app


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    report(app, args.timeout)
    return 0


def report(app: App, within: float) -> None:
    """Check the app (a CheckError if anything is wrong) and say what was found, or created."""
    for note in anyio.run(lambda: app.check(within=within)):
        print(note)
    clusters = ", ".join(app.topology.clusters)
    print(f"ok: every cluster answered ({clusters}) and every topic is on its cluster")
