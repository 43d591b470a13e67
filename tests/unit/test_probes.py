"""``app.health``, the probe server, its ASGI forms and the ``health`` command, on the in-memory
harness (what real brokers do to readiness is tests/reliability/test_health.py's)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiostream_kafka import App, Messages, ProducerRecord
from aiostream_kafka.cli import main
from aiostream_kafka.probes.client import fetch
from aiostream_kafka.probes.health import LoopTicker
from aiostream_kafka.probes.pool import PoolProbes
from aiostream_kafka.probes.server import AppProbes, ProbeServer
from aiostream_kafka.probes.verdict import Verdict
from tests.helpers import free_port


def an_app(**settings: object) -> App:
    app = App(
        "probed",
        kafka={"bootstrap_servers": "127.0.0.1:19092"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:29092"}},
        **settings,  # type: ignore[arg-type]
    )

    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        pass

    @app.route("clicks", cluster="analytics")
    async def on_clicks(messages: Messages[bytes]) -> None:
        pass

    return app


@pytest.fixture
def served() -> Iterator[tuple[App, tuple[str, int]]]:
    app = an_app()
    server = ProbeServer(AppProbes(app.health), ("127.0.0.1", free_port()))
    with server:
        assert not isinstance(server.address, str)
        yield app, server.address


async def test_ready_once_every_listener_joined_and_not_before_the_app_starts() -> None:
    app = an_app()
    before = app.health.readiness()
    async with app.testing() as t:
        await t.drain()
        running = app.health.readiness()
    after = app.health.readiness()

    assert (before.ok, before.problems) == (False, ("the app has not started yet",))
    assert (running.ok, running.problems) == (True, ())
    assert [listener["state"] for listener in running.details["listeners"]] == ["joined", "joined"]
    assert running.details["producers"] == {"primary": True, "analytics": True}
    assert (after.ok, after.problems) == (False, ("the app is stopped",))


async def test_an_unreachable_cluster_is_named_with_the_routes_it_holds_up_until_it_is_back() -> None:
    app = an_app()
    async with app.testing() as t:
        await t.drain()
        app.monitor.emit("cluster.unreachable", cluster="analytics", reason="Connect call failed")
        away = app.health.readiness()
        alive = app.health.liveness()
        app.monitor.emit("cluster.reachable", cluster="analytics", away_for=1.0)
        back = app.health.readiness()

    [problem] = away.problems
    assert problem.startswith("cluster 'analytics' is unreachable (for 0s), holding up: clicks (tests.unit.")
    assert problem.endswith("on_clicks); last error: Connect call failed")
    assert away.details["clusters"]["primary"]["reachable"] is True
    assert alive.ok  # a cluster away is no reason to restart the process
    assert back.ok


async def test_a_crashed_listener_is_not_ready_and_says_why_and_when_it_restarts() -> None:
    app = an_app()
    async with app.testing() as t:
        await t.drain()
        app.monitor.emit(
            "listener.crashed",
            cluster="primary",
            subscription_group="default",
            error=RuntimeError("boom"),
            failures=1,
            restart_in=0.5,
        )
        crashed = app.health.readiness()

    [problem] = crashed.problems
    assert problem.startswith("the listener of orders on cluster 'primary' (group 'probed') crashed")
    assert problem.endswith("(RuntimeError: boom); restarting in 0.5s")


async def test_liveness_fails_while_a_handler_blocks_the_loop_and_names_it() -> None:
    app = App("blocked", kafka={"bootstrap_servers": "127.0.0.1:19092"}, loop_block_threshold=0.1)
    app.health.stuck_after = 0.3
    named = threading.Event()

    @app.route("orders")
    async def blocks(messages: Messages[bytes]) -> None:
        named.wait(timeout=60)  # blocks the loop (what must never be done) until the probe saw it

    seen: list[Verdict] = []

    def probe_from_a_thread() -> None:  # as the probe server does, while the loop cannot run
        while not named.is_set():
            verdict = app.health.liveness()
            if not verdict.ok and "blocked by" in verdict.problems[0]:
                seen.append(verdict)
                named.set()
            time.sleep(0.02)

    async with app.testing() as t:
        await t.drain()
        prober = threading.Thread(target=probe_from_a_thread)
        prober.start()
        await t.feed("orders", [b"x"])
        named.set()  # (if the probe never saw it, the handler's guard ended it)
        prober.join()
        after = app.health.liveness()

    [verdict] = seen
    [problem] = verdict.problems
    assert problem.startswith("the event loop has not run for ")
    assert "blocked by orders/0 (handler tests.unit.test_probes:" in problem
    assert "<locals>.blocks, from offset 0" in problem
    assert after.ok


async def test_liveness_fails_once_the_supervisor_ended_on_a_fatal_error() -> None:
    app = an_app()
    async with app.testing() as t:
        await t.drain()
        app.monitor.emit("error.occurred", cluster="primary", type="fatal", error=MemoryError("out"))
        verdict = app.health.liveness()

    assert verdict.problems == ("the app's supervisor ended: fatal: out",)


def test_the_server_answers_the_probes_as_json_with_the_status_orchestrators_read(
    served: tuple[App, tuple[str, int]],
) -> None:
    _, address = served
    ready_status, ready, _ = fetch(address, "/readyz", timeout=5)
    live_status, live, _ = fetch(address, "/livez", timeout=5)
    other_status, other, _ = fetch(address, "/nope", timeout=5)

    assert (ready_status, json.loads(ready)["problems"]) == (503, ["the app has not started yet"])
    assert (live_status, json.loads(live)["live"]) == (200, True)
    assert other_status == 404
    assert b"/livez, /readyz, /metrics" in other


def test_metrics_are_prometheus_text_or_openmetrics_as_the_scraper_asks(
    served: tuple[App, tuple[str, int]],
) -> None:
    _, address = served
    status, body, content_type = fetch(address, "/metrics", timeout=5)
    _, _, open_metrics = fetch(address, "/metrics", timeout=5, accept="application/openmetrics-text")

    assert status == 200
    assert content_type.startswith("text/plain")
    assert open_metrics.startswith("application/openmetrics-text")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"aiostream_kafka_ready", "aiostream_kafka_cluster_reachable"} <= names


async def test_counts_come_from_batches_labelled_by_cluster() -> None:
    app = an_app()
    metrics = app.health.metrics
    async with app.testing() as t:
        await t.feed("orders", [b"a", b"b", b"c"])
        await t.feed("clicks", [b"d"], cluster="analytics")
    body, _ = metrics.exposition()
    consumed = {
        s.labels["cluster"]: s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "aiostream_kafka_consumed_messages_total"
    }

    assert consumed == {"primary": 3, "analytics": 1}


async def test_what_every_producer_sent_is_counted_by_cluster_and_topic() -> None:
    app = an_app()
    metrics = app.health.metrics
    async with app.testing():
        await (await app.producer.produce_nowait("receipts", b"1"))
        await app.producer.produce("receipts", b"2")
        await app.producer.produce_many([ProducerRecord("receipts", b"3"), ProducerRecord("audit", b"4")])
        await app.producers["analytics"].produce("receipts", b"5")
    body, _ = metrics.exposition()
    sent = {
        (s.labels["cluster"], s.labels["topic"]): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "aiostream_kafka_sent_messages_total"
    }

    assert sent == {("primary", "receipts"): 3, ("primary", "audit"): 1, ("analytics", "receipts"): 1}


def test_a_unix_socket_server_answers_and_removes_its_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "worker-1.sock")
    with ProbeServer(AppProbes(an_app().health), path):
        status, _, _ = fetch(path, "/livez", timeout=5)
    assert status == 200
    assert not Path(path).exists()


async def test_the_asgi_form_answers_under_its_mount() -> None:
    from fastapi import FastAPI

    app = an_app()
    api = FastAPI()
    api.mount("/health", app.health.asgi())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://svc") as client:
        live = await client.get("/health/livez")
        ready = await client.get("/health/readyz")
        metrics = await client.get("/health/metrics")

    assert (live.status_code, live.json()["live"]) == (200, True)
    assert ready.status_code == 503
    assert "aiostream_kafka_ready 0.0" in metrics.text


async def test_the_web_ui_answers_for_the_app_and_is_ready_where_only_the_ui_runs() -> None:
    app = an_app()
    ui = app.web.asgi()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ui), base_url="http://ui") as client:
        ui_only = await client.get("/readyz")
        live = await client.get("/livez")
        async with app.testing() as t:
            await t.drain()
            running = await client.get("/readyz")
            app.monitor.emit("cluster.unreachable", cluster="analytics", reason="refused")
            away = await client.get("/readyz")
    await ui.state.ui.aclose()

    assert (ui_only.status_code, ui_only.json()["serving"]) == (200, "the Web UI (the app runs elsewhere)")
    assert live.status_code == 200
    assert running.status_code == 200
    assert away.status_code == 503
    assert away.json()["problems"][0].startswith("cluster 'analytics' is unreachable")


def test_the_health_command_exits_0_or_1_and_says_why(
    served: tuple[App, tuple[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, (host, port) = served
    live = main(["health", "live", f"{host}:{port}"])
    ready = main(["health", "ready", f"{host}:{port}"])
    out = capsys.readouterr()

    assert (live, ready) == (0, 1)
    assert "live: yes" in out.out
    assert "ready: no (HTTP 503)\n- the app has not started yet" in out.err


def test_the_health_command_fails_when_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["health", "ready", f"127.0.0.1:{port}", "--timeout", "2"]) == 1
    assert f"no answer from 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["8081", "host:", ":8081", "host:port", "host:70000"])
def test_an_address_that_is_not_host_port_is_a_usage_error(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "live", address]) == 2
    assert main(["run", "app:app", "--health", address]) == 2
    assert "expected HOST:PORT (e.g. 0.0.0.0:8081)" in capsys.readouterr().err


def test_run_health_on_an_address_in_use_says_which(
    served: tuple[App, tuple[str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, (host, port) = served
    module = f"probed_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from aiostream_kafka import App\n"
        "app = App('svc', kafka={'bootstrap_servers': '127.0.0.1:19092'})\n"
        "@app.route('orders')\n"
        "async def on_orders(messages): pass\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", f"{module}:app", "--health", f"{host}:{port}"]) == 2
    assert f"error: --health {host}:{port}: cannot listen there: " in capsys.readouterr().err


class Slot:
    """A worker as the parent's probes see it: started its app or not, and its pid."""

    def __init__(self, ready: bool) -> None:
        self.ready = ready
        self.pid = 4242


class Pool:
    """The part of a WorkerPool the parent's probes read: worker 2 is being restarted."""

    processes = 2
    gave_up: str | None = None
    stopping = False

    def __init__(self) -> None:
        self.slots: dict[int, Slot] = {1: Slot(ready=True)}

    def worker(self, number: int) -> Slot | None:
        return self.slots.get(number)


async def test_the_parent_answers_for_every_worker_and_labels_their_series(tmp_path: Path) -> None:
    app = an_app()
    pool = Pool()

    def socket_of(number: int) -> str:
        return str(tmp_path / f"worker-{number}.sock")

    probes = PoolProbes(pool, socket_of, LoopTicker())
    with ProbeServer(AppProbes(app.health), socket_of(1)):
        async with app.testing() as t:
            await t.feed("orders", [b"a", b"b"])
            restarting = await anyio.to_thread.run_sync(probes.readiness)
            pool.slots[2] = Slot(ready=False)
            starting = await anyio.to_thread.run_sync(probes.readiness)
            _, body, _ = await anyio.to_thread.run_sync(lambda: probes.metrics(None))
            pool.gave_up = "worker-2 failed 5 times within 300s"
            live = probes.liveness()

    assert restarting.problems == ("worker-2 is not running (being restarted)",)
    assert restarting.details["workers"]["worker-1"]["ready"] is True
    assert starting.problems == ("worker-2 (pid 4242) has not joined its consumer groups yet",)
    consumed = [
        s
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "aiostream_kafka_consumed_messages_total"
    ]
    assert [(s.labels["worker"], s.labels["cluster"], s.value) for s in consumed] == [
        ("worker-1", "primary", 2)
    ]
    assert live.problems == ("the worker pool gave up: worker-2 failed 5 times within 300s",)


def test_events_outside_a_run_or_missing_fields_change_nothing(caplog: pytest.LogCaptureFixture) -> None:
    app = an_app()
    app.monitor.emit("partitions.assigned", cluster="primary", group="probed", partitions=["orders/0"])
    app.monitor.emit("cluster.unreachable", cluster="primary", reason="refused")
    app.monitor.emit("listener.crashed", cluster="analytics", error=RuntimeError("boom"))

    assert "failed on" not in caplog.text  # no subscriber of app.health raised
    assert app.health.readiness().problems == ("the app has not started yet",)
