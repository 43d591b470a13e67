"""The ``failover`` and ``failback`` commands: move an app's consumer groups' offsets between a
cluster and its MirrorMaker replica (docs/disaster-recovery.md).

A refusal (missing or stale checkpoints, a source that does not answer) is a CliError, so
``main`` prints what to fix and exits 2; nothing was committed then.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import anyio

from aiostream_kafka.cli.errors import CliError
from aiostream_kafka.cli.loading import load_app
from aiostream_kafka.replication.failover import FailoverError, fail_back, fail_over
from aiostream_kafka.replication.replicas import FAILED_OVER_ENV


def failover_command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    try:
        report = anyio.run(
            lambda: fail_over(
                app,
                args.source,
                to=args.to,
                max_checkpoint_age=args.max_checkpoint_age,
                within=args.timeout,
                dry_run=args.dry_run,
            )
        )
    except FailoverError as error:
        raise CliError(str(error)) from None
    return _reported(report.lines(), args.dry_run, f"now run the app with {FAILED_OVER_ENV}={args.source}")


def failback_command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    replica = app.replicas.replica_of(args.to)
    if args.source is not None and args.source != replica.cluster:
        raise CliError(f"cluster {args.source!r} holds no replica of {args.to!r} ({replica.cluster!r} does)")
    try:
        report = anyio.run(lambda: fail_back(app, args.to, within=args.timeout, dry_run=args.dry_run))
    except FailoverError as error:
        raise CliError(str(error)) from None
    return _reported(report.lines(), args.dry_run, f"now run the app without {FAILED_OVER_ENV}")


def _reported(lines: Iterable[str], dry_run: bool, then: str) -> int:
    print("\n".join(lines))
    print("dry run: nothing committed" if dry_run else f"committed; {then}")
    return 0
