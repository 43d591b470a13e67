"""The ``aiostream-kafka`` command: ``info`` shows the topology, mistakes get one-line errors.

Apps are small modules written into tmp_path, each under a name no other test uses, so
Python's import cache never hands one test another's app.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aiostream_kafka import App, Backoff, __version__
from aiostream_kafka.cli import main, render_table
from aiostream_kafka.errors import ShutdownError
from aiostream_kafka.runtime.workers import available_cpus

VENV_BIN = Path(sys.executable).parent

EXAMPLE = """
from aiostream_kafka import App, Consumer, Messages

app = App(
    "svc",
    kafka={"bootstrap_servers": "127.0.0.1:19092"},
    clusters={
        "analytics": {
            "bootstrap_servers": "127.0.0.1:29092",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "u",
            "sasl_plain_password": "s3cret",
            "compression.type": "lz4",
        }
    },
)


@app.route("orders")
async def on_orders(messages: Messages[bytes]) -> None:
    pass


class ClicksConsumer(Consumer):
    async def consume(self, messages: Messages[bytes]) -> None:
        pass


app.routes.topic("clicks", consumer=ClicksConsumer, cluster="analytics")
"""


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Apps are imported from tmp_path (also the cwd, as for a user); they are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", "")):
            del sys.modules[name]


def write_module(tmp_path: Path, source: str) -> str:
    """Write ``source`` as a module with a fresh name and return that name."""
    name = f"cli_app_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def info_of(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, source: str, *options: str
) -> tuple[str, str]:
    """Run ``info`` (with ``options``) on the ``app`` of a module written from ``source``; the
    module's name and what ``info`` printed, once it has said it succeeded."""
    module = write_module(tmp_path, source)
    status, out, _ = run_cli(capsys, "info", f"{module}:app", *options)
    assert status == 0
    return module, out


def section(out: str, title: str) -> dict[str, list[str]]:
    """The rows of one ``info`` table, split into cells and keyed by their first cell."""
    lines = out.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:  # skip the title and the header row
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


def assert_usage_error(status: int, out: str, err: str, *fragments: str) -> None:
    assert status == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1, "one line, no traceback"
    for fragment in fragments:
        assert fragment in err


# --- --version and info ------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "--version")

    assert status == 0
    assert out.strip() == f"aiostream-kafka {__version__}"


def test_info_shows_clusters_groups_topics_and_producers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, EXAMPLE)

    status, out, err = run_cli(capsys, "info", f"{module}:app")

    assert (status, err) == (0, "")
    assert "App 'svc'" in out
    clusters = section(out, "Clusters")
    assert clusters["primary"][:4] == ["primary", "primary", "127.0.0.1:19092", "PLAINTEXT"]
    assert clusters["analytics"][:4] == ["analytics", "named", "127.0.0.1:29092", "SASL_PLAINTEXT"]
    assert "sasl_mechanism=PLAIN" in clusters["analytics"][4]

    groups = section(out, "Subscription groups")
    assert groups["primary/svc/default"] == [
        "primary/svc/default",
        "primary",
        "svc",
        "orders",
        "100",
        "500",
        "auto",
        "earliest",
    ]
    assert groups["analytics/svc/default"][:4] == ["analytics/svc/default", "analytics", "svc", "clicks"]

    topics = section(out, "Topics")
    assert topics["orders"] == [
        "orders",
        "primary",
        "primary/svc/default",
        f"{module}:on_orders",
        "bytes",
        "raw",
    ]
    assert topics["clicks"][:4] == [
        "clicks",
        "analytics",
        "analytics/svc/default",
        f"{module}:ClicksConsumer",
    ]

    producers = section(out, "Producers")
    assert producers["primary"] == [
        "primary",
        "127.0.0.1:19092",
        "primary",
        "none",
        'app.producer, app.producers["primary"]',
    ]
    assert producers["analytics"] == ["analytics", "127.0.0.1:29092", "lz4", 'app.producers["analytics"]']


def test_info_redacts_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(tmp_path, EXAMPLE)

    _, text, text_err = run_cli(capsys, "info", f"{module}:app")
    _, js, js_err = run_cli(capsys, "info", "--json", f"{module}:app")

    assert "s3cret" not in text + text_err + js + js_err
    assert "sasl_plain_password=***" in text
    assert json.loads(js)["clusters"][1]["settings"]["sasl_plain_password"] == "***"


def test_info_json_has_the_same_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module, out = info_of(capsys, tmp_path, EXAMPLE, "--json")
    facts: dict[str, Any] = json.loads(out)
    assert facts["app"] == "svc"
    assert [(c["name"], c["bootstrap_servers"], c["primary"], c["inline"]) for c in facts["clusters"]] == [
        ("primary", "127.0.0.1:19092", True, False),
        ("analytics", "127.0.0.1:29092", False, False),
    ]
    assert facts["clusters"][1]["security_protocol"] == "SASL_PLAINTEXT"
    assert facts["subscription_groups"] == [
        {
            "id": "primary/svc/default",
            "cluster": "primary",
            "group_id": "svc",
            "topics": ["orders"],
            "max_messages": 100,
            "max_wait_ms": 500,
            "max_poll_records": None,
            "initial_offset": "earliest",
        },
        {
            "id": "analytics/svc/default",
            "cluster": "analytics",
            "group_id": "svc",
            "topics": ["clicks"],
            "max_messages": 100,
            "max_wait_ms": 500,
            "max_poll_records": None,
            "initial_offset": "earliest",
        },
    ]
    assert [
        (t["topic"], t["cluster"], t["handler"], t["active"], t["exactly_once"]) for t in facts["topics"]
    ] == [
        ("orders", "primary", f"{module}:on_orders", True, False),
        ("clicks", "analytics", f"{module}:ClicksConsumer", True, False),
    ]
    assert facts["producers"] == [
        {
            "cluster": "primary",
            "bootstrap_servers": "127.0.0.1:19092",
            "primary": True,
            "compression_type": "none",
            "transactional": False,
        },
        {
            "cluster": "analytics",
            "bootstrap_servers": "127.0.0.1:29092",
            "primary": False,
            "compression_type": "lz4",
            "transactional": False,
        },
    ]


FAILURES = """
from aiostream_kafka import App, Backoff, DeadLetterQueue, Messages, Retry, TopicConfig

app = App(
    "svc",
    kafka={"bootstrap_servers": "127.0.0.1:19092"},
    clusters={"analytics": {"bootstrap_servers": "127.0.0.1:29092"}},
    retry_backoff=Backoff(initial=0.5, maximum=10.0),
)


async def handle(messages: Messages[bytes]) -> None: ...


app.routes.topic(
    "orders",
    handler=handle,
    retry=Retry(initial=2, maximum=60, transient=(TimeoutError,)),
    dead_letter_queue=DeadLetterQueue(
        "orders.dlq", cluster="analytics", max_retries=1, dispatch_on=(ValueError,), config=TopicConfig(3)
    ),
)
app.routes.topic("clicks", handler=handle, dead_letter_queue=DeadLetterQueue(None, independent=True))
app.routes.topic("plain", handler=handle)
"""


def test_info_shows_each_routes_retry_backoff_and_dead_letter_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = info_of(capsys, tmp_path, FAILURES)
    rows = section(out, "Failures")
    assert rows["orders"][2:] == [
        "2s x2 up to 60s, jitter 0.1 (Retry); transient: TimeoutError",
        "orders.dlq on analytics after 1 retry (at once on ValueError; decode errors at once; declared)",
    ]
    assert rows["clicks"][2:] == [
        "0.5s x2 up to 10s, jitter 0.1 (app retry_backoff)",
        "skipped after 3 retries (each message counted alone; decode errors at once)",
    ]
    assert rows["plain"][3] == "none: retried until it succeeds"
    assert section(out, "Declared topics")["orders.dlq"][:3] == ["orders.dlq", "analytics", "3"]


def test_info_json_has_each_routes_retry_and_dead_letter_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = info_of(capsys, tmp_path, FAILURES, "--json")
    orders, clicks, plain = json.loads(out)["topics"]
    assert orders["retry"] == {
        "initial": 2,
        "maximum": 60,
        "multiplier": 2.0,
        "jitter": 0.1,
        "transient": ["TimeoutError"],
        "source": "route",
    }
    assert orders["dead_letter_queue"] == {
        "topic": "orders.dlq",
        "cluster": "analytics",
        "max_retries": 1,
        "independent": False,
        "retry_decode_errors": False,
        "dispatch_on": ["ValueError"],
        "declared": True,
    }
    assert (clicks["retry"]["source"], clicks["dead_letter_queue"]["topic"]) == ("app", None)
    assert plain["dead_letter_queue"] is None


def test_info_marks_inline_clusters_inactive_routes_payloads_and_the_producer_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(
        tmp_path,
        """
        import msgspec
        from aiostream_kafka import App, Messages

        class Order(msgspec.Struct):
            id: int

        app = App(
            "svc",
            kafka={"bootstrap_servers": "127.0.0.1:19092"},
            clusters={"analytics": {"bootstrap_servers": "127.0.0.1:29092"}},
            producer_cluster="analytics",
        )

        async def handle(messages: Messages[Order]) -> None:
            pass

        app.routes.topic("legacy", handler=handle, payload=Order, format="msgpack",
                         kafka={"bootstrap.servers": "127.0.0.1:39092"})
        app.routes.topic("old", handler=handle, cluster="analytics", active=False)
        """,
    )

    status, out, _ = run_cli(capsys, "info", f"{module}:app")

    assert status == 0
    assert section(out, "Clusters")["127.0.0.1:39092"][1] == "inline"
    topics = section(out, "Topics")
    assert topics["legacy"][4:] == [f"{module}.Order", "msgpack"]
    assert topics["old"][:3] == ["old", "analytics", "(inactive)"]
    producers = section(out, "Producers")
    assert producers["analytics"][2] == "primary"
    assert "primary" not in producers["primary"][1:]

    _, js, _ = run_cli(capsys, "info", "--json", f"{module}:app")
    old = next(t for t in json.loads(js)["topics"] if t["topic"] == "old")
    assert (old["active"], old["subscription_group"], old["cluster"]) == (False, None, "analytics")


def test_info_of_an_app_without_routes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(
        tmp_path,
        """
        from aiostream_kafka import App
        app = App("empty", kafka={"bootstrap_servers": "127.0.0.1:19092"})
        """,
    )

    status, out, _ = run_cli(capsys, "info", f"{module}:app")

    assert status == 0
    assert "Topics\n  (none)\n" in out


def test_render_table_pads_columns_without_trailing_spaces() -> None:
    table = render_table(["A", "LONGER"], [["wide cell", "x"], ["b", ""]])

    assert table.split("\n") == ["  A          LONGER", "  wide cell  x", "  b"]
    assert render_table(["A"], []) == "  (none)"


# --- mistakes ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["no_colon_here", "module:", ":app"])
def test_a_path_that_is_not_module_colon_attribute(capsys: pytest.CaptureFixture[str], path: str) -> None:
    assert_usage_error(*run_cli(capsys, "info", path), repr(path), "module:attribute")


def test_a_file_name_instead_of_a_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(
        *run_cli(capsys, "info", "examples/multi_cluster.py:app"), "examples.multi_cluster:app"
    )


@pytest.mark.parametrize("module", ["no_such_module_xyz", "no_such_package_xyz.sub"])
def test_a_module_that_does_not_exist(capsys: pytest.CaptureFixture[str], module: str) -> None:
    assert_usage_error(
        *run_cli(capsys, "info", f"{module}:app"), f"module {module!r} not found", "No module named"
    )


def test_an_import_error_inside_the_module_is_not_module_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, "from json import no_such_name\n")

    status, out, err = run_cli(capsys, "info", f"{module}:app")

    assert_usage_error(
        status, out, err, f"importing module {module!r} failed", "cannot import name 'no_such_name'"
    )
    assert f"{module}.py:1" in err
    assert "not found" not in err


def test_a_missing_dependency_of_the_module_is_named_as_a_failure_inside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, "import some_missing_dependency_xyz\n")

    status, out, err = run_cli(capsys, "info", f"{module}:app")

    assert_usage_error(
        status,
        out,
        err,
        f"importing module {module!r} failed",
        "No module named 'some_missing_dependency_xyz'",
    )
    assert f"module {module!r} not found" not in err


def test_a_missing_attribute_lists_the_apps_the_module_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, EXAMPLE + "\nother = App('other', kafka={'bootstrap_servers': 'h:1'})\n")

    assert_usage_error(
        *run_cli(capsys, "info", f"{module}:application"),
        f"module {module!r} has no attribute 'application'",
        "App instances: app, other",
    )


def test_a_missing_attribute_in_a_module_without_apps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, "x = 1\n")

    assert_usage_error(*run_cli(capsys, "info", f"{module}:app"), "has no attribute 'app'", "defines no")


@pytest.mark.parametrize(
    ("attribute", "kind"),
    [("name", "is a str"), ("make", "is a function"), ("App", "is the class aiostream_kafka.app.App")],
)
def test_an_attribute_that_is_not_an_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], attribute: str, kind: str
) -> None:
    module = write_module(
        tmp_path,
        """
        from aiostream_kafka import App
        name = "svc"
        def make() -> App:
            return App("svc", kafka={"bootstrap_servers": "h:1"})
        """,
    )

    assert_usage_error(
        *run_cli(capsys, "info", f"{module}:{attribute}"), kind, "not an aiostream_kafka.App instance"
    )


def test_a_config_error_in_the_topology_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(
        tmp_path,
        """
        from aiostream_kafka import App
        app = App("svc", kafka={"bootstrap_servers": "127.0.0.1:19092"})

        @app.route("orders", cluster="warehouse")
        async def on_orders(messages):
            pass
        """,
    )

    status, out, err = run_cli(capsys, "info", f"{module}:app")

    assert_usage_error(status, out, err, "no cluster named 'warehouse'")
    assert err == "error: route for topic 'orders': no cluster named 'warehouse'; the app has: primary\n"


def test_any_other_error_keeps_its_traceback_with_the_apps_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bug = "\nraise RuntimeError('analytics refused u/s3cret-5e6f')\n"  # after the app is declared
    failing = EXAMPLE.replace("s3cret", "s3cret-5e6f") + bug
    module = write_module(tmp_path, failing)

    status, out, err = run_cli(capsys, "info", f"{module}:app")

    assert (status, out) == (1, "")
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("RuntimeError: analytics refused u/***\n")
    assert "s3cret-5e6f" not in err


def test_a_config_error_while_importing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(
        tmp_path,
        """
        from aiostream_kafka import App
        app = App("svc", kafka={"bootstrap.server": "127.0.0.1:19092"})
        """,
    )

    assert_usage_error(
        *run_cli(capsys, "info", f"{module}:app"),
        "unknown Kafka setting 'bootstrap.server'",
        "bootstrap_servers",
    )


# --- run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["no_colon_here", "no_such_module_xyz:app"])
def test_run_with_a_bad_path_exits_2(capsys: pytest.CaptureFixture[str], path: str) -> None:
    assert_usage_error(*run_cli(capsys, "run", path))


def test_run_checks_the_topology_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(
        tmp_path, EXAMPLE + "\napp.routes.topic('x', consumer=ClicksConsumer, cluster='nope')\n"
    )

    assert_usage_error(*run_cli(capsys, "run", f"{module}:app"), "no cluster named 'nope'")


@pytest.mark.parametrize(
    ("routes", "what"),
    [
        ("", "it has no routes"),
        (
            "app.routes.topic('orders', handler=on_orders, active=False)",
            "all 1 of its routes are inactive (active=False)",
        ),
    ],
)
def test_run_refuses_an_app_with_nothing_to_consume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], routes: str, what: str
) -> None:
    """It would start, find no subscription group, and exit 0 without a word."""
    module = write_module(
        tmp_path,
        f"""
        from aiostream_kafka import App, Messages

        app = App("producer-only", kafka={{"bootstrap_servers": "127.0.0.1:19092"}})

        async def on_orders(messages: Messages[bytes]) -> None:
            pass

        {routes}
        """,
    )

    assert_usage_error(
        *run_cli(capsys, "run", f"{module}:app"),
        f"error: app 'producer-only' has nothing to consume: {what} and no jobs to consume; declare one "
        f'with @app.route("topic"), app.routes.topic(...) or app.jobs.consume("topic"). An app that only '
        f"produces is used from your own code, not run by aiostream-kafka run",
    )


def test_run_runs_an_app_that_only_consumes_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(
        tmp_path,
        """
        from aiostream_kafka import App

        app = App("worker", kafka={"bootstrap_servers": "127.0.0.1:19092"})
        app.jobs.consume("jobs.default")
        """,
    )
    ran: list[App] = []
    monkeypatch.setattr(App, "run", lambda self: ran.append(self))
    monkeypatch.setattr("logging.basicConfig", lambda **kwargs: None)

    assert run_cli(capsys, "run", f"{module}:app") == (0, "", "")
    assert [app.name for app in ran] == ["worker"]


def test_run_configures_logging_and_runs_the_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, EXAMPLE)
    ran: list[App] = []
    logging_config: list[dict[str, Any]] = []
    monkeypatch.setattr(App, "run", lambda self: ran.append(self))
    monkeypatch.setattr("logging.basicConfig", lambda **kwargs: logging_config.append(kwargs))

    status, _, err = run_cli(capsys, "run", f"{module}:app", "--log-level", "DEBUG")

    assert (status, err) == (0, "")
    assert [app.name for app in ran] == ["svc"]
    assert logging_config[0]["level"] == "DEBUG"


def test_run_exits_1_naming_why_when_the_stop_is_cut_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, EXAMPLE)

    def cut_short(self: App) -> None:
        raise ShutdownError("stopped at once on a second SIGTERM", gave_up=False)

    monkeypatch.setattr(App, "run", cut_short)
    monkeypatch.setattr("logging.basicConfig", lambda **kwargs: None)

    status, _, err = run_cli(capsys, "run", f"{module}:app")

    assert (status, err) == (1, "error: stopped at once on a second SIGTERM\n")


def test_run_refuses_an_unknown_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(capsys, "run", "mod:app", "--log-level", "loud")

    assert status == 2
    assert "--log-level" in err


# --- the installed command -----------------------------------------------------------------


def test_the_console_script_imports_apps_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(EXAMPLE)

    result = subprocess.run(
        [str(VENV_BIN / "aiostream-kafka"), "info", "mod:app"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "mod:on_orders" in result.stdout
    assert "s3cret" not in result.stdout


@pytest.mark.parametrize("module", ["aiostream_kafka", "aiostream_kafka.cli"])
def test_python_dash_m_runs_the_cli_by_the_package_or_its_cli(tmp_path: Path, module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "info", "no_colon"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: 'no_colon' is not an app path")


# --- run --processes -----------------------------------------------------------------------


class RecordingPool:
    """Stands in for WorkerPool: remembers how the parent set it up, starts nothing."""

    made: ClassVar[list[RecordingPool]] = []

    def __init__(self, command: Any, processes: int, **options: Any) -> None:
        self.command, self.processes, self.options = command, processes, options
        RecordingPool.made.append(self)

    async def run(self) -> str | None:
        return None


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[RecordingPool]:
    RecordingPool.made = []
    monkeypatch.setattr("aiostream_kafka.cli.workers.WorkerPool", RecordingPool)
    return RecordingPool.made


def test_processes_starts_that_many_workers_of_the_app_in_worker_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pools: list[RecordingPool]
) -> None:
    module = write_module(tmp_path, EXAMPLE)

    status, _, err = run_cli(capsys, "run", f"{module}:app", "--processes", "3", "--log-level", "debug")

    assert (status, err) == (0, "")
    [pool] = pools
    assert pool.processes == 3
    assert pool.command(2, 9, 0.5) == [
        sys.executable, "-m", "aiostream_kafka", "run", f"{module}:app", "--log-level", "debug",
        "--worker", "2", "--heartbeat-fd", "9", "--heartbeat-interval", "0.5",
    ]  # fmt: skip


def test_auto_is_one_process_per_available_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pools: list[RecordingPool]
) -> None:
    module = write_module(tmp_path, EXAMPLE)

    run_cli(capsys, "run", f"{module}:app", "--processes", "auto")

    assert pools[0].processes == available_cpus() >= 1


def test_workers_restart_with_the_apps_backoff_and_stop_within_its_shutdown_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pools: list[RecordingPool]
) -> None:
    module = write_module(
        tmp_path,
        EXAMPLE.replace('"svc",', '"svc", shutdown_timeout=7, restart_backoff=Backoff(initial=0.2),').replace(
            "import App,", "import App, Backoff,"
        ),
    )

    run_cli(capsys, "run", f"{module}:app", "--processes", "2", "--heartbeat-timeout", "9")

    options = pools[0].options
    assert options["restarts"].backoff == Backoff(initial=0.2)
    assert options["stop_timeout"] == 7 + 10  # the app's shutdown_timeout, and a margin to leave
    assert options["liveness"].heartbeat_timeout == 9


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", ""])
def test_processes_must_be_a_positive_integer_or_auto(capsys: pytest.CaptureFixture[str], value: str) -> None:
    status, _, err = run_cli(capsys, "run", "mod:app", "--processes", value)

    assert status == 2
    assert f"argument --processes: expected a positive integer or 'auto', not {value!r}" in err


def test_a_config_error_is_reported_once_by_the_parent_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pools: list[RecordingPool]
) -> None:
    module = write_module(
        tmp_path, EXAMPLE + "\napp.routes.topic('x', consumer=ClicksConsumer, cluster='nope')\n"
    )

    assert_usage_error(
        *run_cli(capsys, "run", f"{module}:app", "--processes", "4"), "no cluster named 'nope'"
    )
    assert pools == []


def test_worker_timeouts_without_processes_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(
        *run_cli(capsys, "run", "mod:app", "--heartbeat-timeout", "5"), "apply to workers: add --processes N"
    )


def test_a_pool_that_gave_up_exits_1_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, EXAMPLE)

    async def gave_up(self: RecordingPool) -> str:
        return "worker-1 failed 5 times within 300s (last: exit status 1)"

    monkeypatch.setattr("aiostream_kafka.cli.workers.WorkerPool", RecordingPool)
    monkeypatch.setattr(RecordingPool, "run", gave_up)

    status, _, err = run_cli(capsys, "run", f"{module}:app", "--processes", "2")

    assert status == 1
    assert err == "error: worker-1 failed 5 times within 300s (last: exit status 1)\n"


def test_worker_mode_is_for_the_parent_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(*run_cli(capsys, "run", "mod:app", "--worker", "1"), "run APP --processes N")


# --- replicas, failover -----------------------------------------------------------------------

REPLICATED = """
from aiostream_kafka import App, Messages

app = App(
    "shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, clusters={"dr": {"bootstrap_servers": "127.0.0.1:2"}}
)
app.replicas.declare("dr", of="primary")


@app.route("orders")
async def on_orders(messages: Messages[bytes]) -> None: ...
"""


def test_info_shows_a_replica_and_what_it_runs_failed_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, out = info_of(capsys, tmp_path, REPLICATED)
    replicas = section(out, "Replicas")
    assert replicas["dr"] == [
        "dr",
        "primary",
        "default",
        "primary.<topic>",
        "primary.checkpoints.internal",
        "no",
    ]

    monkeypatch.setenv("AIOSTREAM_KAFKA_FAILED_OVER", "primary")
    del sys.modules[module]
    _, out, _ = run_cli(capsys, "info", f"{module}:app")
    assert section(out, "Replicas")["dr"][-1] == "yes: runs on dr"
    assert section(out, "Topics")["primary.orders"][:2] == ["primary.orders", "dr"]


def test_failover_names_a_cluster_without_a_replica(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, REPLICATED)
    status, out, err = run_cli(capsys, "failover", f"{module}:app", "--from", "dr")
    assert_usage_error(status, out, err, "cluster 'dr' has no replica declared", "'dr' of 'primary'")
    status, out, err = run_cli(capsys, "failback", f"{module}:app", "--to", "primary", "--from", "primary")
    assert_usage_error(status, out, err, "cluster 'primary' holds no replica of 'primary' ('dr' does)")


EXACTLY_ONCE = """
from aiostream_kafka import App

app = App("svc", kafka={"bootstrap_servers": "127.0.0.1:19092"})


@app.route("orders", exactly_once=True)
async def on_orders(messages):
    pass


@app.route("clicks")
async def on_clicks(messages):
    pass
"""


def test_info_shows_which_routes_are_exactly_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(tmp_path, EXACTLY_ONCE)

    _, text, _ = run_cli(capsys, "info", f"{module}:app")
    _, js, _ = run_cli(capsys, "info", "--json", f"{module}:app")

    topics = section(text, "Topics")
    assert topics["orders"][-1] == "yes"
    assert topics["clicks"][-1] == "raw"  # no EXACTLY ONCE cell
    assert [(t["topic"], t["exactly_once"]) for t in json.loads(js)["topics"]] == [
        ("orders", True),
        ("clicks", False),
    ]


VIRTUAL_PARTITIONS = """
from aiostream_kafka import App, VirtualPartitions

app = App("svc", kafka={"bootstrap_servers": "127.0.0.1:19092"})


def customer(message):
    return message.payload["customer"]


@app.route("orders", virtual_partitions=VirtualPartitions(concurrency=8, key=customer))
async def on_orders(messages):
    pass


@app.route("clicks", virtual_partitions=VirtualPartitions())
async def on_clicks(messages):
    pass


@app.route("payments")
async def on_payments(messages):
    pass
"""


def test_info_shows_each_routes_virtual_partitions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, VIRTUAL_PARTITIONS)

    _, text, _ = run_cli(capsys, "info", f"{module}:app")
    _, js, _ = run_cli(capsys, "info", "--json", f"{module}:app")

    table = section(text, "Virtual partitions")
    assert table["orders"][2:] == ["8", f"{module}:customer"]
    assert table["clicks"][2:] == ["10", "the message key (keyless: by offset)"]
    assert "payments" not in table
    assert [(t["topic"], t["virtual_partitions"]) for t in json.loads(js)["topics"]] == [
        ("orders", {"concurrency": 8, "key": f"{module}:customer"}),
        ("clicks", {"concurrency": 10, "key": None}),
        ("payments", None),
    ]


def test_info_has_no_virtual_partitions_table_when_no_route_has_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = write_module(tmp_path, EXACTLY_ONCE)

    _, text, _ = run_cli(capsys, "info", f"{module}:app")

    assert "Virtual partitions" not in text
