"""The Web UI's parts that need no broker: reports from monitor events, what the board keeps,
who may look, and how payloads are shown."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec
import pytest

from aiostream_kafka import App, Messages, VirtualPartitions
from aiostream_kafka.cli import main
from aiostream_kafka.errors import ConfigError, UnknownClusterError
from aiostream_kafka.instrumentation.monitor import MonitorEvent
from aiostream_kafka.web.auth import HostGuard, TokenGuard, check_bind, is_loopback, loopback_hosts
from aiostream_kafka.web.board import StatusBoard
from aiostream_kafka.web.payloads import show
from aiostream_kafka.web.reporter import Reporter
from aiostream_kafka.web.reports import ErrorReport, ProcessReport, decode_process, encode
from tests.helpers import eventually, web_page


def two_clusters(**options: Any) -> App:
    app = App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:1"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:2"}},
        log_events=False,
        **options,
    )

    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        if any(m.value == b"bad" for m in messages):
            raise ValueError("a bad order")

    @app.route("clicks", cluster="analytics")
    async def on_clicks(messages: Messages[bytes]) -> None:
        pass

    return app


# --- reporting -----------------------------------------------------------------------------------


def test_the_report_tallies_each_listener_from_monitor_events() -> None:
    app = two_clusters()
    reporter = Reporter(app, cluster="primary", reports_topic="r", errors_topic="e", interval=5)
    tags = {"cluster": "primary", "group": "shop", "subscription_group": "default"}
    for event in [
        MonitorEvent("listener.started", tags),
        MonitorEvent("partitions.assigned", {**tags, "partitions": ["orders/0", "orders/1"]}),
        MonitorEvent("batch.processed", {**tags, "topic": "orders", "partition": 0, "count": 7}),
        MonitorEvent("batch.processed", {**tags, "topic": "orders", "partition": 1, "count": 3}),
        MonitorEvent("offsets.committed", {**tags, "offsets": {"orders/0": 7}}),
        MonitorEvent(
            "statistics.emitted",
            {
                **tags,
                "messages_per_second": 12.5,
                "processed": 10,
                "lag": {"orders/0": 4, "orders/1": 0},
                "assigned": ["orders/0", "orders/1"],
                "paused": ["orders/1"],
                "last_commit": 1.0,
            },
        ),
        MonitorEvent("dlq.dispatched", {**tags, "topic": "orders", "partition": 0, "offset": 3}),
    ]:
        reporter.on_event(event)

    report = decode_process(encode(reporter.snapshot()))

    assert [c.name for c in report.clusters] == ["primary", "analytics"]
    orders, clicks = report.listeners
    assert (orders.id, orders.state, orders.messages, orders.batches) == (
        "primary/shop/default",
        "running",
        10,
        2,
    )
    assert (orders.messages_per_second, orders.dead_lettered) == (12.5, 1)
    assert [(p.topic, p.partition, p.committed, p.lag, p.paused) for p in orders.partitions] == [
        ("orders", 0, 7, 4, False),
        ("orders", 1, None, 0, True),
    ]
    assert (clicks.cluster, clicks.state, clicks.partitions) == ("analytics", "starting", [])


def test_errors_are_reported_with_their_traceback_and_without_secrets() -> None:
    app = App(
        "shop",
        kafka={
            "bootstrap_servers": "127.0.0.1:1",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "u",
            "sasl_plain_password": "pa55-w0rd",
        },
        log_events=False,
    )
    reporter = Reporter(app, cluster="primary", reports_topic="r", errors_topic="e", interval=5)
    try:
        raise RuntimeError("login with pa55-w0rd failed")
    except RuntimeError as error:
        failure = error
    reporter.on_event(
        MonitorEvent("error.occurred", {"cluster": "primary", "type": "commit", "error": failure})
    )
    reporter.on_event(
        MonitorEvent("error.occurred", {"cluster": "primary", "type": "web.report", "error": failure})
    )

    [report] = reporter._errors
    assert (report.event, report.kind, report.error_type) == (
        "error.occurred",
        "commit",
        "builtins.RuntimeError",
    )
    assert report.message == "login with *** failed"
    assert "raise RuntimeError" in report.traceback
    assert "pa55-w0rd" not in report.traceback


async def test_a_running_app_reports_to_the_primary_cluster_under_the_harness() -> None:
    app = two_clusters(statistics_interval=0.05)
    # On the harness's clock: a report when the test moves it on, never after real seconds.
    app.web.enable(interval=600)

    def reports(cluster: str | None = None) -> list[ProcessReport]:
        produced = t.produced("aiostream_kafka.reports", cluster=cluster, payload=bytes)
        return [decode_process(m.value or b"") for m in produced]

    async with app.testing() as t:
        await eventually(lambda: len(reports()) == 1, what="the report at start")
        await t.feed("orders", [b"a", b"b"])
        t.clock.advance(600)
        await eventually(lambda: len(reports()) == 2, what="the report an interval later")
        latest = reports()[-1]
        assert app.web.producer is not None
        assert app.web.producer.cluster == "primary"

    assert latest.state == "running"
    assert latest.listeners[0].messages == 2
    assert reports("analytics") == []
    assert [report.state for report in reports()] == ["running", "running", "stopped"]  # the last word,
    # so the UI drops the process at once


async def test_reports_can_go_to_another_cluster_and_failures_to_the_errors_topic() -> None:
    app = two_clusters()
    app.web.enable(cluster="analytics", interval=600)

    async with app.testing(attempts=1) as t:
        with pytest.raises(ValueError, match="a bad order"):
            await t.feed("orders", [b"bad"])
        await eventually(
            lambda: bool(t.produced("aiostream_kafka.errors", cluster="analytics")), what="the error report"
        )
        errors = t.produced("aiostream_kafka.errors", cluster="analytics", payload=ErrorReport)
        assert t.produced("aiostream_kafka.reports", cluster="analytics")
        assert t.produced("aiostream_kafka.reports") == []

    assert errors[0].payload.message == "a bad order"
    assert (errors[0].payload.topic, errors[0].payload.offset) == ("orders", 0)


def test_reporting_settings_are_checked() -> None:
    app = two_clusters()
    with pytest.raises(ConfigError, match="interval"):
        app.web.enable(interval=0)
    with pytest.raises(
        UnknownClusterError, match=r"app.web.enable\(cluster=...\): no cluster named 'analytcs'"
    ):
        app.web.enable(cluster="analytcs")


def test_info_says_where_reports_go(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    module = types.ModuleType("web_info_app")
    module.app = two_clusters()  # type: ignore[attr-defined]
    module.app.web.enable(cluster="analytics", interval=2)
    monkeypatch.setitem(sys.modules, "web_info_app", module)

    assert main(["info", "web_info_app:app"]) == 0
    out = capsys.readouterr().out
    assert "Web UI status reports" in out
    assert "analytics  aiostream_kafka.reports  aiostream_kafka.errors  2s" in out


# --- the board -------------------------------------------------------------------------------------


def report(process: str, *, reported_at: float, state: str = "running", interval: float = 5) -> ProcessReport:
    return ProcessReport(
        schema=1, id=process, app="shop", host="h", pid=1, started_at=reported_at - 60,
        reported_at=reported_at, interval=interval, state=state, clusters=[], listeners=[],
    )  # fmt: skip


def test_processes_that_stop_reporting_age_out_and_stopped_ones_leave_at_once() -> None:
    board = StatusBoard(two_clusters())
    now = time.time()
    board._take(True, encode(report("fresh", reported_at=now - 2)))
    board._take(True, encode(report("silent", reported_at=now - 16)))
    board._take(True, encode(report("gone", reported_at=now - 1, state="stopped")))
    board._take(True, encode(report("fresh", reported_at=now - 30)))  # an older report arriving late
    board._take(True, b"not a report")

    assert [p.id for p in board.live(now)] == ["fresh"]


# --- who may look ------------------------------------------------------------------------------------


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_with_a_token_every_request_needs_it() -> None:
    guarded = TokenGuard(hello, token="t0ken")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://ui") as client:
        assert (await client.get("/")).status_code == 401
        assert (await client.get("/", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await client.get("/?token=nope")).status_code == 401
        assert (await client.get("/", headers={"Authorization": "Bearer t0ken"})).text == "hello"
        redirect = await client.get("/errors?token=t0ken&x=1")
        assert redirect.status_code == 303
        assert redirect.headers["location"] == "/errors?x=1"  # the token leaves the address
        assert "HttpOnly" in redirect.headers["set-cookie"]
        assert (await client.get("/errors")).text == "hello"  # the cookie carries it from now on


@pytest.mark.parametrize(
    ("address", "location"),
    [
        ("//evil.example/x?token=t0ken", "/evil.example/x"),  # not scheme-relative: same origin
        ("///evil.example/x?token=t0ken", "/evil.example/x"),
        ("/\\evil.example/x?token=t0ken", "/%5Cevil.example/x"),  # browsers read \\ as /
        ("/%09/evil.example?token=t0ken", "/%09/evil.example"),  # and drop a tab
    ],
)
async def test_the_token_redirect_never_leaves_this_server(address: str, location: str) -> None:
    guarded = TokenGuard(hello, token="t0ken")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://ui") as client:
        redirect = await client.get(client.base_url.copy_with(raw_path=address.encode()))  # as sent

    assert redirect.status_code == 303
    assert redirect.headers["location"] == location


@pytest.mark.parametrize("path_has_the_mount", [True, False])  # Starlette's Mount; older servers
async def test_mounted_the_token_redirect_goes_back_under_the_mount(path_has_the_mount: bool) -> None:
    guarded = TokenGuard(hello, token="t0ken")

    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        path = "/kafka/errors" if path_has_the_mount else "/errors"
        await guarded({**scope, "root_path": "/kafka", "path": path}, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mounted), base_url="http://svc") as client:
        redirect = await client.get("/kafka/errors?token=t0ken")

    assert redirect.headers["location"] == "/kafka/errors"  # not /kafka/kafka/errors


async def test_without_a_token_only_requests_addressed_to_loopback_are_answered() -> None:
    """A DNS-rebinding page (evil.example resolving to 127.0.0.1) sends its own name as Host."""
    guarded = HostGuard(hello, hosts=loopback_hosts("127.0.0.1", 8080))
    answers = {}
    for base in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                 "http://evil.example:8080", "http://127.0.0.1:9090"):  # fmt: skip
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            answers[base] = await client.get("/")

    assert [base for base, answer in answers.items() if answer.text == "hello"] == [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ]
    refused = answers["http://evil.example:8080"]
    assert refused.status_code == 421
    assert refused.text == (
        "421: this Web UI answers only requests for 127.0.0.1:8080, [::1]:8080, localhost:8080, "
        "not Host 'evil.example:8080'; to serve it under another name, give it a token "
        "(--token or AIOSTREAM_KAFKA_WEB_TOKEN)\n"
    )
    assert answers["http://127.0.0.1:9090"].status_code == 421


def test_the_hosts_of_a_loopback_bind_are_its_address_and_the_loopback_names_with_its_port() -> None:
    assert loopback_hosts("127.0.0.2", 8080) == {
        "127.0.0.2:8080", "127.0.0.1:8080", "localhost:8080", "[::1]:8080",
    }  # fmt: skip
    assert loopback_hosts("::1", 80) == {
        "127.0.0.1:80", "localhost:80", "[::1]:80", "127.0.0.1", "localhost", "[::1]",
    }  # fmt: skip


def test_serving_beyond_loopback_needs_a_token() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t0ken")
    with pytest.raises(ValueError, match="give a token"):
        check_bind("0.0.0.0", None)


def test_the_cli_refuses_to_serve_beyond_loopback_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "examples.multi_cluster:app", "--host", "0.0.0.0"]) == 2
    assert "reachable from other machines: give a token (--token or AIOSTREAM_KAFKA_WEB_TOKEN)" in (
        capsys.readouterr().err
    )


# --- showing payloads -----------------------------------------------------------------------------------


def test_payloads_are_shown_as_json_text_or_hex_and_cut_when_long() -> None:
    assert show(b'{"a":1}') == ("json", '{\n  "a": 1\n}')
    assert show(b"<script>x</script>") == ("text", "<script>x</script>")  # escaped by the templates
    assert show(b"\xff\x00") == ("binary", "ff 00")
    kind, text = show(b"x" * 5000)
    assert kind == "text"
    assert text.endswith("… 904 more bytes")
    assert show(None) == ("null", "")
    assert msgspec.json.decode(show(b'{"a": [1, 2]}')[1]) == {"a": [1, 2]}


async def test_the_ui_mounts_in_a_fastapi_app_with_its_links_under_the_mount() -> None:
    from fastapi import FastAPI

    app = two_clusters()
    ui = app.web.asgi()
    api = FastAPI()
    api.mount("/kafka", ui)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://svc") as client:
        page = await client.get("/kafka/")
        style = await client.get("/kafka/static/style.css")
    await ui.state.ui.aclose()

    assert page.status_code == 200
    assert 'href="http://svc/kafka/routing"' in page.text
    assert 'data-api="http://svc/kafka/api/overview"' in page.text
    assert style.status_code == 200
    assert 'data-cluster="analytics"' in page.text


async def test_the_routing_page_shows_replicas_and_whether_the_app_runs_on_one() -> None:
    app = two_clusters()
    app.replicas.declare("analytics", of="primary", policy="identity")
    app.replicas.fail_over("primary")
    ui = app.web.asgi()
    page = await web_page(ui, "/routing")

    assert page.status_code == 200
    assert "Replicas (MirrorMaker 2)" in page.text
    assert "<td>analytics</td><td>primary</td><td>identity</td><td>&lt;topic&gt;</td>" in page.text
    assert "yes: runs on analytics" in page.text
    assert page.text.count("Replicas (MirrorMaker 2)") == 1  # in the page, not in its title too
    assert "<title>Routing · aiostream-kafka</title>" in page.text


def exactly_once_app() -> App:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)

    @app.route("orders", exactly_once=True)
    async def on_orders(messages: Messages[bytes]) -> None:
        pass

    @app.route("clicks")
    async def on_clicks(messages: Messages[bytes]) -> None:
        pass

    return app


def test_the_report_says_which_topics_are_exactly_once_and_counts_aborted_transactions() -> None:
    reporter = Reporter(
        exactly_once_app(), cluster="primary", reports_topic="r", errors_topic="e", interval=5
    )
    tags = {"cluster": "primary", "group": "shop", "subscription_group": "default"}
    aborted = {**tags, "topic": "orders", "partition": 0, "transactional_id": "t", "error": ValueError("x")}
    reporter.on_event(MonitorEvent("transaction.aborted", aborted))

    [listener] = decode_process(encode(reporter.snapshot())).listeners

    assert (listener.exactly_once, listener.transactions_aborted) == (["orders"], 1)


async def test_the_routing_page_shows_the_exactly_once_topics_of_each_subscription_group() -> None:
    ui = exactly_once_app().web.asgi()
    page = await web_page(ui, "/routing")

    assert page.status_code == 200
    assert "<th>Exactly once</th>" in page.text
    assert "<td>orders, clicks</td>\n      <td>orders</td>" in page.text


async def test_the_routing_page_shows_how_many_virtual_partitions_each_topic_splits_into() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)

    @app.route("orders", virtual_partitions=VirtualPartitions(concurrency=8))
    async def on_orders(messages: Messages[bytes]) -> None:
        pass

    @app.route("clicks")
    async def on_clicks(messages: Messages[bytes]) -> None:
        pass

    ui = app.web.asgi()
    page = await web_page(ui, "/routing")

    assert page.status_code == 200
    assert ">Virtual partitions</th>" in page.text
    none = "\N{EN DASH}"  # what a cell with nothing to show holds
    assert f"<td>orders, clicks</td>\n      <td>{none}</td>\n      <td>orders (8)</td>" in page.text
