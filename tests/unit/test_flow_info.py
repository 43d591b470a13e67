"""``info`` shows what each route holds back from its handler, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_cli import info_of, isolated_imports, section

__all__ = ["isolated_imports"]  # the autouse fixture, for these tests too

FLOW = """
from aiostream_kafka import App, Messages, Throttle

app = App("svc", kafka={"bootstrap_servers": "127.0.0.1:1"})


def fresh_only(message):
    return True


async def handle(messages: Messages[bytes]) -> None:
    pass


app.routes.topic("alerts", handler=handle, expire_after=300, filter=fresh_only)
app.routes.topic("mails", handler=handle, throttle=Throttle(messages=10, per=60, scope="partition"))
app.routes.topic("grace", handler=handle, delay=30)
app.routes.topic("plain", handler=handle)
"""


def test_info_lists_each_routes_expiry_delay_filter_and_throttle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module, out = info_of(capsys, tmp_path, FLOW)
    rows = section(out, "Held back from handlers")
    assert rows["alerts"][2] == f"expire after 300s; filter {module}:fresh_only"
    assert rows["mails"][2] == "at most 10 per 60s per partition"
    assert rows["grace"][2] == "delay 30s"
    assert "plain" not in rows


def test_info_json_has_each_routes_flow_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module, out = info_of(capsys, tmp_path, FLOW, "--json")
    flows = {t["topic"]: t["flow"] for t in json.loads(out)["topics"]}
    assert flows["alerts"] == {
        "filter": f"{module}:fresh_only",
        "throttle": None,
        "expire_after": 300,
        "delay": None,
    }
    assert flows["mails"]["throttle"] == {"messages": 10, "per": 60, "scope": "partition"}
    assert flows["plain"] is None
