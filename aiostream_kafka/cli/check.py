"""The ``check`` command: every cluster answers and every topic is on its cluster.

What is wrong is a CheckError (a ConfigError), so ``main`` prints it in one line and exits 2.
"""

from __future__ import annotations

import argparse

import anyio

from aiostream_kafka.cli.loading import load_app


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    for note in anyio.run(lambda: app.check(within=args.timeout)):
        print(note)
    clusters = ", ".join(app.topology.clusters)
    print(f"ok: every cluster answered ({clusters}) and every topic is on its cluster")
    return 0
