"""A recurring job on real Kafka, in one app on a clock 60 times faster: it ticks every minute
of that clock, each tick's run and record committed together; stopped and started again
later, the app enqueues the stretch it missed once; a schedule topic that is not there is an
error naming it and how to create it."""

from __future__ import annotations

import itertools
import time
import uuid

import msgspec

from aiostream_kafka import App, JobEnvelope
from aiostream_kafka.jobs import current_job
from aiostream_kafka.jobs.schedule import ScheduleRecord
from tests.helpers import Events, FastClock, create_topic, eventually, read_committed

SPEED = 60.0


def recurring(primary: str, topic: str, group: str, ran: list[JobEnvelope]) -> App:
    app = App(
        "schedules",
        kafka={"bootstrap_servers": primary},
        group_id=group,
        auto_create_topics=True,
        log_events=False,
    )

    @app.job(topic=topic, name="minutely", schedule="* * * * *")
    async def minutely() -> None:
        envelope = current_job()
        assert envelope is not None
        ran.append(envelope)

    app.jobs.consume(topic)
    return app


async def records(primary: str, topic: str) -> list[ScheduleRecord]:
    return [
        msgspec.json.decode(r.value or b"", type=ScheduleRecord) for r in await read_committed(primary, topic)
    ]


async def test_a_recurring_job_ticks_and_after_a_stop_runs_the_missed_stretch_once(
    primary: str, topic_name: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, topic_name)
    origin = time.time()
    ran: list[JobEnvelope] = []
    app = recurring(primary, topic_name, group, ran)
    app.clock = FastClock(origin, SPEED)
    assert any("created" in note for note in await app.check())  # the declared schedule topic

    async with app.running():
        await eventually(lambda: len(ran) >= 3, within=60, what="three ticks run")
    ticks = [e.tick or 0.0 for e in ran]
    assert [b - a for a, b in itertools.pairwise(ticks)] == [60.0] * (len(ticks) - 1)
    assert all(t % 60 == 0 for t in ticks)
    [*_, last] = await records(primary, f"{group}.schedule")
    assert (last.job, last.last_tick, last.envelope_id) == ("minutely", ran[-1].tick, ran[-1].id)

    # Started again ten minutes of its clock later, as after downtime: one run for the stretch.
    events = Events(app)
    app.clock = FastClock(origin, SPEED, ahead=600.0)
    before = len(ran)
    async with app.running():
        await eventually(lambda: len(ran) > before, within=60, what="the missed stretch's run")
    stretch = ran[before]
    assert stretch.missed >= 9
    assert (stretch.tick or 0.0) - (ran[before - 1].tick or 0.0) == 60.0 * (stretch.missed + 1)
    [tick, *_] = events.named("schedule.tick")
    assert (tick["tick"], tick["missed"]) == (stretch.tick, stretch.missed)

    committed = [
        msgspec.json.decode(r.value or b"", type=JobEnvelope)
        for r in await read_committed(primary, topic_name)
    ]
    assert [e.tick for e in committed] == [e.tick for e in ran[: len(committed)]]


async def test_a_missing_schedule_topic_is_an_error_naming_it(primary: str, topic_name: str) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, topic_name)
    app = recurring(primary, topic_name, group, [])
    events = Events(app)

    async with app.running():
        await eventually(
            lambda: events.count("error.occurred", type="schedule") > 0, what="the schedule error"
        )
    error = str(events.named("error.occurred", type="schedule")[0]["error"])
    assert (
        f"the schedule topic '{group}.schedule' of jobs ['minutely'] does not exist on cluster 'primary'"
        in error
    )
    assert "topics migrate" in error
