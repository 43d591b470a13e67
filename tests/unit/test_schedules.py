"""Recurring jobs under the testing harness: the virtual clock drives the ticks, each tick is
enqueued once (with its record on the schedule topic, in one transaction), and a stretch of
missed ticks is enqueued once, saying how many it stands for."""

from __future__ import annotations

import time

import msgspec
import pytest

from aiostream_kafka import App, ConfigError, JobEnvelope
from aiostream_kafka.asyncapi import asyncapi_document
from aiostream_kafka.jobs.cron import Cron
from aiostream_kafka.jobs.schedule import ScheduleRecord
from aiostream_kafka.testing.harness import TestApp
from aiostream_kafka.web.board import StatusBoard
from aiostream_kafka.web.reports import ProcessReport, ScheduleStatus, decode_process, encode
from tests.asyncapi_schema import problems
from tests.helpers import web_page


def shop() -> App:
    """A cluster nobody can reach: the harness must never try."""
    return App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)


def every_five_minutes(app: App, ran: list[str]) -> None:
    @app.job(topic="reports", name="report", schedule="*/5 * * * *")
    async def report(title: str = "daily") -> None:
        ran.append(title)

    app.jobs.consume("reports")


async def advance_to_next_tick(t: TestApp) -> float:
    """Move the virtual clock onto the next five-minute tick and let what it enqueued run; the
    tick, for the assertions to name."""
    tick = Cron.parse("*/5 * * * *").next_after(t.clock.now())
    t.clock.advance(tick - t.clock.now())
    await t.drain()
    return tick


async def test_advancing_past_a_tick_enqueues_the_job_once_and_runs_it() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)
    cron = Cron.parse("*/5 * * * *")

    async with app.testing() as t:
        first = cron.next_after(t.clock.now())
        t.clock.advance(first - t.clock.now() - 1)
        await t.drain()
        assert ran == []  # a second before the tick

        t.clock.advance(1)
        await t.drain()
        assert ran == ["daily"]
        [envelope] = t.jobs("report")
        assert (envelope.tick, envelope.missed) == (first, 0)

        t.clock.advance(300)
        await t.drain()
        assert ran == ["daily", "daily"]
        assert [e.tick for e in t.jobs("report")] == [first, first + 300]
        assert len({e.id for e in t.jobs("report")}) == 2


async def test_each_tick_is_recorded_on_the_schedule_topic_in_the_same_transaction() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)

    async with app.testing() as t:
        tick = await advance_to_next_tick(t)

        records = [
            msgspec.json.decode(m.value or b"", type=ScheduleRecord)
            for m in t.produced("shop.schedule", payload=bytes)
        ]
        assert [(r.job, r.last_tick) for r in records] == [("report", None), ("report", tick)]
        [envelope] = t.jobs("report")
        assert records[-1].envelope_id == envelope.id
        assert t.aborted("shop.schedule") == []
        assert t.aborted("reports") == []


async def test_missed_ticks_are_enqueued_once_for_the_latest_saying_how_many() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)
    cron = Cron.parse("*/5 * * * *")

    async with app.testing() as t:
        start = t.clock.now()
        t.clock.advance(31 * 60)  # six or seven ticks pass at once
        await t.drain()

        latest, missed = cron.due(start, t.clock.now()) or (0.0, -1)
        assert missed >= 5
        assert ran == ["daily"]
        [envelope] = t.jobs("report")
        assert (envelope.tick, envelope.missed) == (latest, missed)
        [tick] = t.events.named("schedule.tick")
        assert (tick["job"], tick["tick"], tick["missed"], tick["job_topic"]) == (
            "report",
            latest,
            missed,
            "reports",
        )


async def test_the_scheduler_says_when_it_took_over_and_when_it_let_go() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)

    async with app.testing() as t:
        [assigned] = t.events.named("schedule.assigned")
        assert assigned["topic"] == "shop.schedule"
        assert assigned["transactional_id"] == "shop.schedule.shop.schedule"
        assert assigned["jobs"] == {
            "report": Cron.parse("*/5 * * * *").next_after(assigned["jobs"]["report"] - 300)
        }
    assert t.events.named("schedule.revoked", topic="shop.schedule")


async def test_a_job_enqueued_by_hand_still_runs_beside_its_schedule() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)
    [report] = app.jobs.scheduled()

    async with app.testing() as t:
        await report.enqueue(title="now")
        await t.drain()
        assert ran == ["now"]
        assert [e.tick for e in t.jobs("report")] == [None]


def test_the_schedule_topic_is_declared_single_partition_and_compacted() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)

    [declared] = [d for d in app.topology.declared if d.name == "shop.schedule"]
    assert (declared.cluster, declared.config.partitions) == ("primary", 1)
    assert declared.config.settings == {"cleanup.policy": "compact"}


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("*/5 * * *", "job 'tick': schedule '*/5 * * *': 4 field(s) where cron has 5"),
        ("0 25 * * *", "job 'tick': schedule '0 25 * * *': hour field: 25 is out of range (0-23)"),
        (
            "0 0 * * funday",
            "job 'tick': schedule '0 0 * * funday': day-of-week field: 'funday' is not a number",
        ),
        (300, "job 'tick': schedule= is a cron expression such as '*/5 * * * *', not int"),
    ],
)
def test_a_bad_schedule_fails_at_declaration_naming_the_job_and_the_field(
    schedule: object, says: str
) -> None:
    app = shop()

    async def tick() -> None: ...

    with pytest.raises(ConfigError) as raised:
        app.job(name="tick", schedule=schedule)(tick)  # type: ignore[arg-type]
    assert says in str(raised.value)


def test_a_scheduled_job_needs_defaults_for_its_parameters() -> None:
    app = shop()

    async def bill(customer: str, dry_run: bool = False) -> None: ...

    with pytest.raises(
        ConfigError, match=r"job 'bill': a scheduled job is enqueued without arguments.*'customer'"
    ):
        app.job(name="bill", schedule="@daily")(bill)


def test_a_job_envelope_without_tick_fields_still_decodes() -> None:
    old = b'{"name":"a","id":"1","args":{},"enqueued_at":1.0}'
    envelope = msgspec.json.decode(old, type=JobEnvelope)
    assert (envelope.tick, envelope.missed) == (None, 0)


# --- the Web UI ----------------------------------------------------------------------------------


async def test_the_scheduler_reports_each_recurring_job_with_its_next_and_last_tick() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)
    app.web.enable(interval=600)

    async with app.testing() as t:
        tick = await advance_to_next_tick(t)
        assert app.web.reporter is not None
        [status] = decode_process(encode(app.web.reporter.snapshot())).schedules

    assert status == ScheduleStatus(
        "primary", "report", "*/5 * * * *", tick + 300, scheduler=True, last_tick=tick, missed=0
    )


def process(id_: str, *schedules: ScheduleStatus) -> ProcessReport:
    now = time.time()
    return ProcessReport(
        schema=1, id=id_, app="shop", host="h", pid=1, started_at=now - 60, reported_at=now, interval=5,
        state="running", clusters=[], listeners=[], schedules=list(schedules),
    )  # fmt: skip


async def test_the_routing_page_lists_schedules_as_their_scheduler_reports_them() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)
    tick = Cron.parse("*/5 * * * *").next_after(time.time())
    seen = ScheduleStatus("primary", "report", "*/5 * * * *", tick)
    knows = ScheduleStatus(
        "primary", "report", "*/5 * * * *", tick, scheduler=True, last_tick=tick - 900, missed=2
    )
    ui = app.web.asgi()
    board: StatusBoard = ui.state.ui.board
    board._take(True, encode(process("bystander", seen)))
    board._take(True, encode(process("host:42:scheduler", knows)))

    assert [s["scheduler"] for s in board.schedules()] == ["host:42:scheduler"]
    page = await web_page(ui, "/routing")

    assert page.status_code == 200
    assert "Recurring jobs (cron, UTC)" in page.text
    assert "<td>report</td><td><code>*/5 * * * *</code></td>" in page.text
    assert "for 3 ticks" in page.text
    assert "<td>host:42:scheduler</td>" in page.text


def test_the_asyncapi_document_has_the_schedule_topic_and_its_records() -> None:
    app, ran = shop(), list[str]()
    every_five_minutes(app, ran)

    document = asyncapi_document(app)

    assert problems(document) == []
    [(channel_id, channel)] = [
        (cid, c) for cid, c in document["channels"].items() if c["address"] == "shop.schedule"
    ]
    [message] = channel["messages"].values()
    assert message["name"] == "ScheduleRecord"
    sends = [o for o in document["operations"].values() if o["channel"]["$ref"] == f"#/channels/{channel_id}"]
    assert [o["action"] for o in sends] == ["send"]
    assert "ScheduleRecord" in document["components"]["schemas"]
