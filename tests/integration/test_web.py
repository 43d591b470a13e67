"""The Web UI on real Kafka, in a real browser (Debian's Chromium, driven by Playwright): an
app consuming from both clusters reports through the primary; the overview shows both
clusters and their lag changing; a hostile payload shows as text; a token guards any
address beyond loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright

from aiostream_kafka import App, Messages
from tests.helpers import create_topic, eventually, eventually_true, free_port
from tests.integration.test_security import plain

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("AIOSTREAM_KAFKA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = b'<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@asynccontextmanager
async def serving(web_app: Any, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """The ASGI app on a real HTTP server (uvicorn) in this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web_app, host=host, port=port, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(server.serve)
        await eventually(lambda: server.started, what="the web server")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


def busy_app(primary: str, secondary: str, run: str) -> App:
    """Consumes from both clusters, slower on the primary than messages arrive there."""
    app = App(
        f"web-{run}",
        kafka={"bootstrap_servers": primary},
        clusters={"analytics": {"bootstrap_servers": secondary}},
        statistics_interval=0.5,
        log_events=False,
    )
    app.web.enable(interval=0.5, reports_topic=f"{run}.reports", errors_topic=f"{run}.errors")

    @app.route(f"{run}.orders", max_messages=5)
    async def on_orders(messages: Messages[bytes]) -> None:
        await anyio.sleep(0.5)  # 10 messages a second, against 25 produced: lag grows

    @app.route(f"{run}.clicks", cluster="analytics")
    async def on_clicks(messages: Messages[bytes]) -> None:
        pass

    return app


async def test_the_overview_shows_both_clusters_and_their_lag_changing_in_a_browser(
    primary: str, secondary: str
) -> None:
    run = f"web-{uuid.uuid4().hex[:8]}"
    app = busy_app(primary, secondary, run)
    await create_topic(primary, f"{run}.orders")
    await create_topic(secondary, f"{run}.clicks")

    async def traffic() -> None:
        while True:
            for _ in range(40):
                await app.producer.produce_nowait(f"{run}.orders", b"order")
                await app.producers["analytics"].produce_nowait(f"{run}.clicks", b"click")
            await anyio.sleep(1.5)

    async with (
        app.running(),
        serving(app.web.asgi()) as url,
        chromium() as browser,
        anyio.create_task_group() as background,
    ):
        background.start_soon(traffic)
        page = await browser.new_page()
        await page.goto(url)
        for name in ("primary", "analytics"):
            await page.wait_for_selector(f'tr[data-cluster="{name}"]')
        lags: set[str] = set()
        processes: set[str] = set()

        async def lag_changed_and_process_counted() -> bool:
            lags.add(await page.inner_text('tr[data-cluster="primary"] [data-field="lag"]'))
            processes.add(await page.inner_text('tr[data-cluster="analytics"] [data-field="processes"]'))
            return len(lags) >= 3 and "1" in processes

        with contextlib.suppress(AssertionError):  # the assertions below say what was missing
            await eventually_true(lag_changed_and_process_counted, what="the page to show the lag changing")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "web-overview.png"), full_page=True)
        health = await page.inner_text('tr[data-cluster="analytics"] [data-field="health"]')
        plotted = await page.locator('tr[data-cluster="primary"] svg polyline').count()
        background.cancel_scope.cancel()

    assert len(lags) >= 3, f"the primary's lag did not change on the page: {lags}"
    assert any(int(lag) > 0 for lag in lags)
    assert "1" in processes  # the analytics cluster's consumer, seen in this process's report
    assert "broker" in health
    assert plotted == 2  # throughput and lag


async def test_a_hostile_payload_is_shown_as_text_in_the_explorer(primary: str, topic_name: str) -> None:
    app = App("explorer", kafka={"bootstrap_servers": primary}, log_events=False)
    await create_topic(primary, topic_name)
    async with app.running():
        await app.producer.produce(topic_name, HOSTILE, headers={"note": "<b>bold</b>"})

    async with serving(app.web.asgi()) as url, chromium() as browser:
        page = await browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        await page.goto(f"{url}/explorer?cluster=primary&topic={topic_name}")
        payload = await page.inner_text("pre.payload")
        header = await page.inner_text("table.headers td")
        executed = await page.evaluate("window.__xss")
        bold = await page.locator("table.headers b").count()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "web-explorer.png"), full_page=True)

    assert payload == HOSTILE.decode()
    assert header == "<b>bold</b>"
    assert executed is None
    assert bold == 0
    assert dialogs == []


async def test_beyond_loopback_a_request_without_the_token_gets_401(primary: str) -> None:
    app = App("guarded", kafka={"bootstrap_servers": primary}, log_events=False)

    async with serving(app.web.asgi(token="s3cret-t0ken"), host="0.0.0.0") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/")).status_code == 401
            assert (await client.get("/api/overview")).status_code == 401
            assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status_code == 401
            allowed = await client.get("/", headers={"Authorization": "Bearer s3cret-t0ken"})
            assert allowed.status_code == 200
            assert "s3cret-t0ken" not in allowed.text
        async with chromium() as browser:
            page = await browser.new_page()
            response = await page.goto(f"{url}/?token=s3cret-t0ken")
            assert response is not None
            assert response.status == 200
            assert page.url == f"{url}/"  # the token left the address bar for a cookie
            refreshed = await page.goto(f"{url}/routing")
            assert refreshed is not None
            assert refreshed.status == 200


async def test_every_page_answers_with_the_security_headers(primary: str) -> None:
    app = App("headers", kafka={"bootstrap_servers": primary}, log_events=False)
    async with serving(app.web.asgi()) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/", "/routing", "/errors", "/dlq", "/explorer", "/clusters/primary", "/api/overview"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "script-src" not in response.headers["content-security-policy"]  # default-src 'self'
            assert response.headers["x-content-type-options"] == "nosniff"
        assert (await client.post("/")).status_code == 405  # read-only
        assert (await client.get("/clusters/nope")).status_code == 404


WEB_APP_MODULE = """
from aiostream_kafka import App

app = App("served", kafka={kafka!r})
app.web.enable()
"""


@asynccontextmanager
async def cli_web(
    kafka: dict[str, Any], tmp_path: Path, *options: str
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """``aiostream-kafka web`` in its own process, as users run it; yields a client of it and
    every line it writes (stdout and stderr, uvicorn's access log included), as they come."""
    (tmp_path / "served_app.py").write_text(WEB_APP_MODULE.format(kafka=kafka))
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "aiostream_kafka",
        "web",
        "served_app:app",
        "--port",
        str(port),
        *options,
    ]
    environment = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    lines: list[str] = []
    async with await anyio.open_process(command, env=environment, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        output = process.stdout

        async def read() -> None:
            async for chunk in output:
                lines.extend(chunk.decode().splitlines())

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            await eventually(lambda: logged(lines, "Uvicorn running on"), what="the server")
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    yield client, lines
            finally:
                process.terminate()  # uvicorn stops gracefully and writes what it has


def logged(lines: list[str], text: str) -> bool:
    return any(text in line for line in lines)


async def test_the_token_never_shows_in_the_logs_of_aiostream_kafka_web_nor_a_sasl_password(
    secure_cluster: dict[str, Any], tmp_path: Path
) -> None:
    token = "t0ken-" + uuid.uuid4().hex
    options = ("--token", token, "--log-level", "debug")
    async with cli_web(plain(secure_cluster), tmp_path, *options) as (browser, lines):
        redirect = await browser.get(f"/errors?token={token}&x=1")
        assert redirect.status_code == 303
        access = '"GET /errors?token=***&x=1 HTTP/1.1" 303'
        await eventually(lambda: logged(lines, access), what="the access log line")
        await eventually(lambda: logged(lines, "SaslAuthenticateRequest"), what="aiokafka logging a login")

    written = "\n".join(lines)
    assert token not in written
    assert secure_cluster["password"] not in written


async def test_aiostream_kafka_web_without_a_token_answers_only_requests_addressed_to_loopback(
    primary: str, tmp_path: Path
) -> None:
    async with cli_web({"bootstrap_servers": primary}, tmp_path) as (browser, _):
        rebound = await browser.get("/", headers={"Host": "evil.example:8080"})  # DNS rebinding
        direct = await browser.get("/")

    assert rebound.status_code == 421
    assert "answers only requests for 127.0.0.1:" in rebound.text
    assert direct.status_code == 200
