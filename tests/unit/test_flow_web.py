"""The Web UI shows what each route holds back from its handler: its settings, and the counts
the processes report (messages expired and filtered, partitions throttled, delayed, paused)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from aiostream_kafka import App, Message, Messages, Throttle
from aiostream_kafka.web.reports import HeldBack, ProcessReport, decode_process
from tests.helpers import eventually, web_page


def not_spam(message: Message[bytes]) -> bool:
    return message.value != b"spam"


def held_back_app() -> App:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)

    @app.route("alerts", expire_after=60, filter=not_spam)
    async def on_alerts(messages: Messages[bytes]) -> None:
        pass

    @app.route("mails", throttle=Throttle(messages=2, per=30))
    async def on_mails(messages: Messages[bytes]) -> None:
        pass

    @app.route("plain")
    async def on_plain(messages: Messages[bytes]) -> None:
        pass

    return app


async def test_reports_count_what_each_route_held_back_and_the_routing_page_shows_it() -> None:
    app = held_back_app()
    app.web.enable(interval=600)

    def reports() -> list[ProcessReport]:
        return [decode_process(m.value or b"") for m in t.produced("aiostream_kafka.reports", payload=bytes)]

    async with app.testing() as t:
        stale = int((app.clock.now() - 120) * 1000)
        await t.feed("alerts", [b"old-1", b"old-2"], timestamp_ms=stale)
        await t.feed("alerts", [b"spam", b"news"])
        await t.feed("mails", [b"m"] * 5)
        before = len(reports())
        t.clock.advance(600)
        await eventually(lambda: len(reports()) > before, what="the report an interval later")
        latest = reports()[-1]

    [listener] = latest.listeners
    assert listener.held_back == {
        "alerts": HeldBack(expired=2, filtered=1),
        "mails": HeldBack(throttled=2),
    }

    ui = app.web.asgi()
    ui.state.ui.board.processes[latest.id] = latest
    page = await web_page(ui, "/routing")

    assert page.status_code == 200
    assert "<h2>Held back from handlers</h2>" in page.text
    assert "<td>alerts</td><td>expire after 60s; filter tests.unit.test_flow_web:not_spam</td>" in page.text
    assert (
        "<td>mails</td><td>at most 2 per 30s per route</td>\n"
        '      <td class="num">0</td><td class="num">0</td>\n'
        '      <td class="num">2</td>'
    ) in page.text
    assert "<td>plain</td>" not in page.text.split("Held back from handlers")[1]


async def test_metrics_count_skipped_messages_and_partition_holds_by_reason() -> None:
    app = held_back_app()
    metrics = app.health.metrics
    async with app.testing() as t:
        await t.feed("alerts", [b"old"], timestamp_ms=int((app.clock.now() - 120) * 1000))
        await t.feed("alerts", [b"spam", b"spam"])
        await t.feed("mails", [b"m"] * 3)
    body, _ = metrics.exposition()
    samples = [s for family in text_string_to_metric_families(body.decode()) for s in family.samples]

    skipped = {
        (s.labels["topic"], s.labels["reason"]): s.value
        for s in samples
        if s.name == "aiostream_kafka_skipped_messages_total"
    }
    holds = {
        (s.labels["topic"], s.labels["reason"]): s.value
        for s in samples
        if s.name == "aiostream_kafka_partition_holds_total"
    }
    assert skipped == {("alerts", "expired"): 1, ("alerts", "filtered"): 2}
    assert holds == {("mails", "throttled"): 1}
