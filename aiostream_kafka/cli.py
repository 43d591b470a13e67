"""The ``aiostream-kafka`` command: run an app, or show what it would consume and produce.

Apps are named the way uvicorn names them, ``module:attribute`` (``examples.multi_cluster:app``),
imported from the current directory. Mistakes in that path or in the app's settings are
reported in one line on stderr with exit status 2, never as a traceback: they are the
user's to fix, and the message says what to fix. Any other exception raised by the user's
module keeps its traceback (exit 1), because there the traceback is what points at the
bug; any secret the app declared is masked in it, as in every log line.

``run APP --processes N`` makes this process the parent of N workers (runtime/workers.py):
the app is checked here, once, so that its mistakes are still one line and exit 2; each
worker is this command again in a worker mode the parent alone uses. A pool that gives
up exits 1 with the reason as its last line.

A stop that is not graceful exits 1 with ``error: ...`` naming why: a second signal cut it
short, or handlers ignored cancellation past ``shutdown_timeout`` (``App.stop`` gave up on
them; the process then ends from inside its event loop, which could not close).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import traceback
import types
from collections.abc import Iterable, Sequence
from typing import Any, get_origin

import anyio

from aiostream_kafka.__about__ import __version__
from aiostream_kafka.admin.migration import migrate, plan
from aiostream_kafka.app import App, exit_if_given_up
from aiostream_kafka.errors import ConfigError, ShutdownError
from aiostream_kafka.instrumentation import redaction
from aiostream_kafka.jobs import Job
from aiostream_kafka.routing.route import Route
from aiostream_kafka.routing.topology import Topology
from aiostream_kafka.runtime.heartbeat import HeartbeatSender, Liveness
from aiostream_kafka.runtime.workers import RestartPolicy, WorkerPool, available_cpus

USAGE_ERROR = 2
FAILED = 1
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: A worker's lines say which worker wrote them: they share the parent's output.
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)-7s [worker-{number}] %(name)s: %(message)s"
#: Beyond the app's shutdown_timeout, what a worker's stop may take: the last commit,
#: leaving the group, flushing and closing producers; for handlers that ignore cancellation,
#: app.CANCEL_GRACE and app.LEAVE_TIMEOUT (7 s), after which the worker exits 1 by itself.
STOP_MARGIN = 10.0

# Every command may log a secret (aiokafka's DEBUG request log, a traceback), and the user's
# module may configure logging as it imports: mask from here on, before any of that.
redaction.install()


class CliError(Exception):
    """A mistake the user can fix; ``main`` prints it as ``error: ...`` and exits 2."""


# --- finding the app ---------------------------------------------------------------------


def load_app(path: str) -> App:
    """Import ``module:attribute`` and return that App, or raise CliError saying what is wrong."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise CliError(f"{path!r} is not an app path; the expected form is module:attribute (e.g. main:app)")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        dotted = module_name.removesuffix(".py").replace("/", ".").replace("\\", ".").strip(".")
        raise CliError(f"{path!r} names a file; give the module instead: {dotted}:{attribute}")
    module = _import(module_name)
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CliError(_missing(module, attribute))
        target = getattr(target, part)
    if not isinstance(target, App):
        hint = ""
        if isinstance(target, types.FunctionType):
            hint = f"; if it builds the App, call it at module level (app = {attribute}()) and name that"
        raise CliError(f"{path!r} is {_kind(target)}, not an aiostream_kafka.App instance{hint}")
    return target


def _import(module_name: str) -> types.ModuleType:
    """Import the user's module, telling a module that is not there from one that fails to import."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # error.name is what was not found: the module itself (or a parent package), or
        # something the module imports, which is a failure inside the module.
        if error.name is not None and (module_name + ".").startswith(error.name + "."):
            raise CliError(
                f"module {module_name!r} not found ({error}); run from the directory that contains it, "
                f"or add that directory to PYTHONPATH"
            ) from None
        raise CliError(_failed_import(module_name, error)) from None
    except ImportError as error:
        raise CliError(_failed_import(module_name, error)) from None


def _failed_import(module_name: str, error: ImportError) -> str:
    """Name the line of the user's code that failed: the traceback is hidden, the place is not."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if "importlib" not in frame.filename
    ]
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"importing module {module_name!r} failed{where}: {type(error).__name__}: {error}"


def _missing(module: types.ModuleType, attribute: str) -> str:
    apps = [name for name, value in vars(module).items() if isinstance(value, App)]
    found = f"its App instances: {', '.join(apps)}" if apps else "it defines no aiostream_kafka.App"
    return f"module {module.__name__!r} has no attribute {attribute!r}; {found}"


def _kind(value: Any) -> str:
    """How an error describes what the user pointed at instead of an App."""
    if isinstance(value, types.ModuleType):
        return f"the module {value.__name__}"
    if isinstance(value, type):
        return f"the class {_qualified(value)}"
    if isinstance(value, types.FunctionType):
        return "a function"
    return f"a {_qualified(type(value))}"


def _qualified(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# --- describing the topology -------------------------------------------------------------


def describe(topology: Topology, jobs: Iterable[Job] = ()) -> dict[str, Any]:
    """Every fact ``info`` shows, as plain data: the JSON output, and what the tables are made of."""
    return {
        "jobs": [{"name": job.name, "topic": job.topic, "cluster": job.cluster} for job in jobs],
        "clusters": [
            {
                "name": cluster.name,
                "bootstrap_servers": cluster.bootstrap_servers,
                "primary": cluster is topology.primary,
                "inline": cluster.inline,
                "security_protocol": cluster.settings.identity["security_protocol"],
                "settings": cluster.settings.redacted(),
            }
            for cluster in topology.clusters.values()
        ],
        "subscription_groups": [
            {
                "id": group.id,
                "cluster": group.cluster.name,
                "group_id": group.group_id,
                "topics": list(group.topic_names),
                "max_messages": group.max_messages,
                "max_wait_ms": group.max_wait_ms,
                "initial_offset": group.initial_offset,
            }
            for group in topology.subscription_groups
        ],
        "topics": [
            *(
                _topic(topic.route, group.cluster.name, group.id)
                for group in topology.subscription_groups
                for topic in group.topics
            ),
            *(_topic(topic.route, topic.cluster.name, None) for topic in topology.inactive),
        ],
        "producers": [
            {
                "cluster": name,
                "bootstrap_servers": cluster.bootstrap_servers,
                "primary": cluster is topology.producer_cluster,
                "compression_type": cluster.settings.producer.get("compression_type") or "none",
            }
            for name, cluster in topology.clusters.items()
        ],
        "declared_topics": [
            {
                "topic": d.name,
                "cluster": d.cluster.name,
                "partitions": d.config.partitions,
                "replication_factor": d.config.replication_factor,
                "settings": d.config.wanted_settings(),
                "source": d.source,
            }
            for d in topology.declared
        ],
        "on_several_clusters": {
            name: clusters
            for name in dict.fromkeys([t.name for t in topology.topics] + [d.name for d in topology.declared])
            if len(clusters := topology.clusters_of(name)) > 1
        },
    }


def _topic(route: Route, cluster: str, subscription_group: str | None) -> dict[str, Any]:
    return {
        "topic": route.topic,
        "cluster": cluster,
        "subscription_group": subscription_group,
        "handler": route.handler_name,
        "payload": _payload_name(route.payload),
        "format": _format(route),
        "active": subscription_group is not None,
    }


def _payload_name(payload: Any) -> str:
    if isinstance(payload, type) and get_origin(payload) is None:
        return _qualified(payload)
    return repr(payload).replace("typing.", "")


def _format(route: Route) -> str:
    if route.decoder is not None:
        return f"decoder {getattr(route.decoder, '__qualname__', repr(route.decoder))}"
    return "raw" if route.payload is bytes else route.format


# --- printing it -------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to their widest cell, two spaces apart; no trailing spaces."""
    if not rows:
        return f"{indent}(none)"
    widths = [max(map(len, column)) for column in zip(headers, *rows, strict=True)]
    return "\n".join(
        (indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip()
        for row in [headers, *rows]
    )


def render_info(app_name: str, facts: dict[str, Any]) -> str:
    """The human-readable ``info``: one table per kind of thing, in the order data flows."""
    clusters = [
        [
            c["name"],
            "primary" if c["primary"] else "inline" if c["inline"] else "named",
            c["bootstrap_servers"],
            c["security_protocol"],
            " ".join(
                f"{key}={value}"
                for key, value in c["settings"].items()
                if key not in {"bootstrap_servers", "security_protocol"}
            ),
        ]
        for c in facts["clusters"]
    ]
    groups = [
        [
            g["id"],
            g["cluster"],
            g["group_id"],
            ", ".join(g["topics"]),
            str(g["max_messages"]),
            str(g["max_wait_ms"]),
            g["initial_offset"],
        ]
        for g in facts["subscription_groups"]
    ]
    topics = [
        [
            t["topic"],
            t["cluster"],
            t["subscription_group"] or "(inactive)",
            t["handler"],
            t["payload"],
            t["format"],
        ]
        for t in facts["topics"]
    ]
    producers = [
        [
            p["cluster"],
            p["bootstrap_servers"],
            "primary" if p["primary"] else "",
            p["compression_type"],
            ("app.producer, " if p["primary"] else "") + f'app.producers["{p["cluster"]}"]',
        ]
        for p in facts["producers"]
    ]
    sections = [
        f"App {app_name!r} (nothing connected; secrets shown as ***)",
        "",
        "Clusters",
        render_table(["NAME", "ROLE", "BOOTSTRAP SERVERS", "SECURITY", "SETTINGS"], clusters),
        "",
        "Subscription groups (one consumer each)",
        render_table(
            ["ID", "CLUSTER", "GROUP ID", "TOPICS", "MAX MESSAGES", "MAX WAIT MS", "INITIAL OFFSET"], groups
        ),
        "",
        "Topics",
        render_table(["TOPIC", "CLUSTER", "SUBSCRIPTION GROUP", "HANDLER", "PAYLOAD", "FORMAT"], topics),
        "",
        "Producers (one per cluster)",
        render_table(["CLUSTER", "BOOTSTRAP SERVERS", "ROLE", "COMPRESSION", "USE AS"], producers),
    ]
    if facts["declared_topics"]:
        declared = [
            [
                d["topic"],
                d["cluster"],
                str(d["partitions"]),
                str(d["replication_factor"]),
                _settings(d["settings"]),
            ]
            for d in facts["declared_topics"]
        ]
        sections += [
            "",
            "Declared topics (aiostream-kafka topics plan / migrate)",
            render_table(["TOPIC", "CLUSTER", "PARTITIONS", "REPLICATION", "SETTINGS"], declared),
        ]
    if facts["jobs"]:
        jobs = [[j["name"], j["topic"], j["cluster"]] for j in facts["jobs"]]
        sections += ["", "Jobs (enqueued to)", render_table(["JOB", "TOPIC", "CLUSTER"], jobs)]
    web = facts.get("web")
    if web:
        sections += [
            "",
            "Web UI status reports",
            render_table(
                ["CLUSTER", "REPORTS TOPIC", "ERRORS TOPIC", "EVERY"],
                [[web["cluster"], web["reports_topic"], web["errors_topic"], f"{web['interval']:g}s"]],
            ),
        ]
    if facts["on_several_clusters"]:
        sections += ["", "Warnings"]
        sections += [
            f"  topic {name!r} is used on {len(clusters)} clusters ({', '.join(clusters)}): "
            f"check that each route points at the cluster you mean"
            for name, clusters in facts["on_several_clusters"].items()
        ]
    return "\n".join(sections)


def _settings(settings: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in settings.items())


# --- commands ----------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    facts = describe(app.topology, app.jobs)
    facts["web"] = _web_facts(app)
    if args.json:
        print(json.dumps({"app": app.name, **facts}, indent=2, default=repr))
    else:
        print(render_info(app.name, facts))
    return 0


def _web_facts(app: App) -> dict[str, Any] | None:
    web = app.web
    if not web.enabled:
        return None
    return {
        "cluster": web.cluster,
        "reports_topic": web.reports_topic,
        "errors_topic": web.errors_topic,
        "interval": web.interval,
    }


def _web(args: argparse.Namespace) -> int:
    """Serve the Web UI for the app's clusters (the app itself does not run here)."""
    from aiostream_kafka.web.auth import TOKEN_ENV, BindError, check_bind, loopback_hosts

    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        check_bind(args.host, token)
    except BindError as error:
        raise CliError(str(error)) from None
    try:
        import uvicorn
    except ImportError:
        raise CliError("the Web UI needs its extra: pip install 'aiostream-kafka[web]'") from None
    app = load_app(args.app)
    # Tokenless means loopback: answer only requests addressed to it (no DNS rebinding).
    web_app = app.web.asgi(token=token, hosts=None if token else loopback_hosts(args.host, args.port))
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    uvicorn.run(web_app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _check(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    for note in anyio.run(lambda: app.check(within=args.timeout)):
        print(note)
    clusters = ", ".join(app.topology.clusters)
    print(f"ok: every cluster answered ({clusters}) and every topic is on its cluster")
    return 0


def _topics(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    return int(anyio.run(_topics_command, app, args.action, args.cluster))


async def _topics_command(app: App, action: str, cluster: str | None) -> int:
    async with app.admin:
        if action == "list":
            names = [cluster] if cluster else list(app.topology.clusters)
            for name in names:
                admin = app.admin.cluster(name)
                for topic, description in (await admin.describe_topics(await admin.list_topics())).items():
                    print(f"{name}\t{topic}\t{description.partitions} partitions")
            return 0
        changes = await plan(app.topology, app.admin, cluster=cluster)
        if action == "migrate":
            for change in await migrate(changes, app.admin):
                print(f"done: {change}")
            refused = [change for change in changes if change.action == "refused"]
            for change in refused:
                print(f"refused: {change}")
            return 1 if refused else 0
        for change in changes:
            print(change)
        if not changes:
            print("nothing to do: every declared topic matches on every cluster")
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.worker is not None:
        return _run_worker(args)
    if args.processes is None and (args.heartbeat_timeout or args.startup_timeout):
        raise CliError("--heartbeat-timeout and --startup-timeout apply to workers: add --processes N")
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    app = load_app(args.app)
    nothing = _nothing_to_consume(app)  # settings and routes are checked here, before anything connects
    if nothing:
        raise CliError(nothing)
    if args.check:
        for note in anyio.run(lambda: app.check(within=args.check_timeout)):
            print(note)
    if args.processes is not None:
        return _run_workers(app, args)
    try:
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


def _run_workers(app: App, args: argparse.Namespace) -> int:
    """The parent of ``--processes N``: the app was validated here once, the workers run it."""

    def command(number: int, heartbeat_fd: int, interval: float) -> list[str]:
        return [
            sys.executable, "-m", "aiostream_kafka", "run", args.app, "--log-level", args.log_level,
            "--worker", str(number),
            "--heartbeat-fd", str(heartbeat_fd),
            "--heartbeat-interval", str(interval),
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
    failure = anyio.run(pool.run, backend="asyncio")
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return FAILED
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    """One of the parent's workers: the app, served next to the heartbeat the parent watches."""
    if args.heartbeat_fd is None:
        raise CliError("--worker is how a --processes parent starts its workers; run APP --processes N")
    logging.basicConfig(level=args.log_level.upper(), format=WORKER_LOG_FORMAT.format(number=args.worker))
    app = load_app(args.app)
    heartbeat = HeartbeatSender(args.heartbeat_fd, args.heartbeat_interval)
    try:
        anyio.run(exit_if_given_up, lambda: heartbeat.serve(app), backend="asyncio")
    except KeyboardInterrupt:
        return 130
    except ShutdownError as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    return 0


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
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiostream-kafka", description="Run an aiostream-kafka app, or show its topology."
    )
    parser.add_argument("--version", action="version", version=f"aiostream-kafka {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the app until SIGINT or SIGTERM")
    run.add_argument("app", metavar="APP", help="the app to run, as module:attribute")
    run.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default="info", help="default: %(default)s"
    )
    run.add_argument(
        "--check", action="store_true", help="first check clusters and topics (see `check`); stop if wrong"
    )
    run.add_argument("--check-timeout", type=float, default=10.0, metavar="SECONDS", help="default: 10")
    run.add_argument(
        "--processes",
        type=processes,
        metavar="N|auto",
        help="run N worker processes of the app in its consumer groups, supervised by this one "
        "(auto: one per CPU); default: this process runs the app",
    )
    run.add_argument(
        "--heartbeat-timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"replace a worker whose event loop is silent this long; default {Liveness.heartbeat_timeout:g}",
    )
    run.add_argument(
        "--startup-timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"replace a worker whose app has not started this long; default {Liveness.startup_timeout:g}",
    )
    # How the parent starts a worker; not for people.
    run.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    run.add_argument("--heartbeat-fd", type=int, help=argparse.SUPPRESS)
    run.add_argument("--heartbeat-interval", type=float, default=2.0, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check", help="check that every cluster answers and every topic is on its cluster, then exit"
    )
    check.add_argument("app", metavar="APP", help="the app to check, as module:attribute")
    check.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per cluster; default 10"
    )
    check.set_defaults(handler=_check)

    topics = commands.add_parser("topics", help="declared topics: plan, migrate (never deletes), list")
    topics.add_argument("action", choices=["plan", "migrate", "list"])
    topics.add_argument("app", metavar="APP", help="the app, as module:attribute")
    topics.add_argument("--cluster", metavar="NAME", help="only this cluster (default: every cluster)")
    topics.set_defaults(handler=_topics)

    web = commands.add_parser("web", help="serve the Web UI: status, lag, errors, DLQ and messages")
    web.add_argument("app", metavar="APP", help="the app whose clusters to show, as module:attribute")
    web.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (any other needs a token)")
    web.add_argument("--port", type=int, default=8080, help="default: 8080")
    web.add_argument("--token", help="required from every request; default: $AIOSTREAM_KAFKA_WEB_TOKEN")
    web.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default="info", help="default: %(default)s"
    )
    web.set_defaults(handler=_web)

    info = commands.add_parser("info", help="show clusters, subscription groups, topics and producers")
    info.add_argument("app", metavar="APP", help="the app to describe, as module:attribute")
    info.add_argument("--json", action="store_true", help="print JSON instead of tables")
    info.set_defaults(handler=_info)
    return parser


def _import_from_cwd() -> None:
    """``aiostream-kafka run examples.multi_cluster:app`` finds ``examples`` here, as uvicorn does."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; returns the exit status rather than exiting, so tests can call it."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, and usage errors
        return stop.code if isinstance(stop.code, int) else USAGE_ERROR
    _import_from_cwd()
    try:
        status: int = args.handler(args)
    except (CliError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as error:  # a bug: its traceback, as Python shows it, but never a secret
        print(redaction.masked("".join(traceback.format_exception(error))), file=sys.stderr, end="")
        return FAILED
    return status
