"""The command line: its commands, their options, and how each option's value is checked."""

from __future__ import annotations

import argparse

from aiostream_kafka.__about__ import __version__
from aiostream_kafka.cli import asyncapi, check, failover, health, info, run, topics, web
from aiostream_kafka.cli.logs import LOG_LEVELS
from aiostream_kafka.runtime.heartbeat import Liveness
from aiostream_kafka.runtime.workers import available_cpus


def processes(value: str) -> int:
    """``--processes``: a positive number of workers, or ``auto`` for one per available CPU."""
    if value.strip().lower() == "auto":
        return available_cpus()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', not {value!r}")
    return count


def positive_seconds(value: str) -> float:
    """``--heartbeat-timeout`` and ``--startup-timeout``: more than zero seconds."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options; each command's ``handler`` is what ``main`` calls."""
    parser = argparse.ArgumentParser(
        prog="aiostream-kafka", description="Run an aiostream-kafka app, or show its topology."
    )
    parser.add_argument("--version", action="version", version=f"aiostream-kafka {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_args = commands.add_parser("run", help="run the app until SIGINT or SIGTERM")
    run_args.add_argument("app", metavar="APP", help="the app to run, as module:attribute")
    run_args.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default="info", help="default: %(default)s"
    )
    run_args.add_argument(
        "--check", action="store_true", help="first check clusters and topics (see `check`); stop if wrong"
    )
    run_args.add_argument("--check-timeout", type=float, default=10.0, metavar="SECONDS", help="default: 10")
    run_args.add_argument(
        "--processes",
        type=processes,
        metavar="N|auto",
        help="run N worker processes of the app in its consumer groups, supervised by this one "
        "(auto: one per CPU); default: this process runs the app",
    )
    run_args.add_argument(
        "--heartbeat-timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"replace a worker whose event loop is silent this long; default {Liveness.heartbeat_timeout:g}",
    )
    run_args.add_argument(
        "--startup-timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"replace a worker whose app has not started this long; default {Liveness.startup_timeout:g}",
    )
    run_args.add_argument(
        "--reload",
        action="store_true",
        help="for development: restart the app (gracefully) whenever its source changes",
    )
    run_args.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="with --reload, watch DIR (repeatable); default: the app's package or module directory",
    )
    run_args.add_argument(
        "--health",
        type=health.address,
        metavar="HOST:PORT",
        help="serve /livez, /readyz and /metrics there (with --processes, for every worker)",
    )
    # How the parent starts a worker; not for people.
    run_args.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    run_args.add_argument("--heartbeat-fd", type=int, help=argparse.SUPPRESS)
    run_args.add_argument("--heartbeat-interval", type=float, default=2.0, help=argparse.SUPPRESS)
    run_args.add_argument("--health-socket", help=argparse.SUPPRESS)
    run_args.set_defaults(handler=run.command)

    health_args = commands.add_parser(
        "health", help="ask `run --health HOST:PORT` whether the app is live or ready; exit 0 or 1"
    )
    health_args.add_argument("probe", choices=["live", "ready"])
    health_args.add_argument(
        "address", type=health.address, metavar="HOST:PORT", help="what --health was given"
    )
    health_args.add_argument(
        "--timeout", type=positive_seconds, default=5.0, metavar="SECONDS", help="default: %(default)s"
    )
    health_args.set_defaults(handler=health.command)

    check_args = commands.add_parser(
        "check", help="check that every cluster answers and every topic is on its cluster, then exit"
    )
    check_args.add_argument("app", metavar="APP", help="the app to check, as module:attribute")
    check_args.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per cluster; default 10"
    )
    check_args.set_defaults(handler=check.command)

    topics_args = commands.add_parser(
        "topics", help="plan or migrate (never deletes) the declared topics; list the app's topics"
    )
    topics_args.add_argument("action", choices=["plan", "migrate", "list"])
    topics_args.add_argument("app", metavar="APP", help="the app, as module:attribute")
    topics_args.add_argument("--cluster", metavar="NAME", help="only this cluster (default: every cluster)")
    topics_args.add_argument(
        "--all", action="store_true", help="list: every topic of the clusters, not only the app's"
    )
    topics_args.set_defaults(handler=topics.command)

    web_args = commands.add_parser("web", help="serve the Web UI: status, lag, errors, DLQ and messages")
    web_args.add_argument("app", metavar="APP", help="the app whose clusters to show, as module:attribute")
    web_args.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (any other needs a token)")
    web_args.add_argument("--port", type=int, default=8080, help="default: 8080")
    web_args.add_argument("--token", help="required from every request; default: $AIOSTREAM_KAFKA_WEB_TOKEN")
    web_args.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default="info", help="default: %(default)s"
    )
    web_args.set_defaults(handler=web.command)

    info_args = commands.add_parser("info", help="show clusters, subscription groups, topics and producers")
    info_args.add_argument("app", metavar="APP", help="the app to describe, as module:attribute")
    info_args.add_argument("--json", action="store_true", help="print JSON instead of tables")
    info_args.set_defaults(handler=info.command)

    asyncapi_args = commands.add_parser(
        "asyncapi", help="print the app as an AsyncAPI 3.0 document: clusters, channels, payload schemas"
    )
    asyncapi_args.add_argument("app", metavar="APP", help="the app to describe, as module:attribute")
    asyncapi_args.add_argument("--yaml", action="store_true", help="print YAML instead of JSON")
    asyncapi_args.add_argument(
        "--app-version",
        default="0.0.0",
        metavar="VERSION",
        help="the API's version (info.version); default 0.0.0",
    )
    asyncapi_args.set_defaults(handler=asyncapi.command)
    add_failover_commands(commands)
    return parser


def add_failover_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``failover`` and ``failback`` (docs/disaster-recovery.md)."""
    over = commands.add_parser(
        "failover",
        help="commit the app's groups' offsets on a replica, translated by MirrorMaker's checkpoints",
    )
    over.add_argument("app", metavar="APP", help="the app, as module:attribute")
    over.add_argument("--from", dest="source", required=True, metavar="CLUSTER", help="the failed cluster")
    over.add_argument("--to", metavar="CLUSTER", help="its replica (default: the one declared)")
    over.add_argument(
        "--max-checkpoint-age",
        type=positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="with the source away: checkpoints older than this before its last heartbeat are stale; "
        "default 30",
    )
    back = commands.add_parser(
        "failback",
        help="commit the app's groups' offsets back on the source, translated by MirrorMaker's offset syncs",
    )
    back.add_argument("app", metavar="APP", help="the app, as module:attribute")
    back.add_argument(
        "--from", dest="source", metavar="CLUSTER", help="the replica (default: the one declared)"
    )
    back.add_argument("--to", required=True, metavar="CLUSTER", help="the cluster that is back")
    for sub in (over, back):
        sub.add_argument(
            "--timeout", type=positive_seconds, default=10.0, metavar="SECONDS", help="default 10"
        )
        sub.add_argument(
            "--dry-run", action="store_true", help="check and show the translation; commit nothing"
        )
    over.set_defaults(handler=failover.failover_command)
    back.set_defaults(handler=failover.failback_command)
