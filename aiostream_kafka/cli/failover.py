"""The ``failover`` and ``failback`` commands: move an app's consumer groups' offsets between a
cluster and its MirrorMaker replica (docs/disaster-recovery.md).

A refusal (missing or stale checkpoints, a source that does not answer) is a CliError, so
``main`` prints what to fix and exits 2; nothing was committed then.
"""

from __future__ import annotations

import argparse

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
    print("\n".join(report.lines()))
    if args.dry_run:
        print("dry run: nothing committed")
    else:
        print(f"committed; now run the app with {FAILED_OVER_ENV}={args.source}")
    return 0


def failback_command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    replica = app.replicas.replica_of(args.to)
    if args.source is not None and args.source != replica.cluster:
        raise CliError(f"cluster {args.source!r} holds no replica of {args.to!r} ({replica.cluster!r} does)")
    try:
        report = anyio.run(lambda: fail_back(app, args.to, within=args.timeout, dry_run=args.dry_run))
    except FailoverError as error:
        raise CliError(str(error)) from None
    print("\n".join(report.lines()))
    if args.dry_run:
        print("dry run: nothing committed")
    else:
        print(f"committed; now run the app without {FAILED_OVER_ENV}")
    return 0
