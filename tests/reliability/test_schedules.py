"""A recurring job in two processes of one app, on real Kafka: each tick is enqueued once
(counted from the jobs topic, read committed), through a rebalance and through a kill -9 of
the scheduling process; a stretch without a scheduler comes back as one run saying how many
ticks it stands for. The app's clock runs 60 times faster, so a minute's tick comes every second."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
import uuid
from pathlib import Path

import msgspec
import pytest

from aiostream_kafka import JobEnvelope
from tests.helpers import create_topic, eventually, eventually_true, read_committed
from tests.reliability.scenario import start_worker

pytestmark = pytest.mark.slow

APP = "tests.reliability.schedule_app:app"
MINUTE = 60.0


async def enqueued(bootstrap: str, topic: str) -> list[JobEnvelope]:
    """Every run enqueued to the jobs topic that a read-committed consumer sees, by tick."""
    records = await read_committed(bootstrap, topic)
    envelopes = [msgspec.json.decode(r.value or b"", type=JobEnvelope) for r in records]
    return sorted(envelopes, key=lambda e: e.tick or 0.0)


def doubled_and_lost(envelopes: list[JobEnvelope]) -> tuple[int, int]:
    """Ticks enqueued twice, and ticks neither enqueued nor counted as missed by the run after
    them (each run follows the one before by one minute per tick it stands for: itself and the
    ones it says were missed)."""
    ticks = [e.tick or 0.0 for e in envelopes]
    doubled = len(ticks) - len(set(ticks))
    unique = sorted({e.tick or 0.0: e for e in envelopes}.values(), key=lambda e: e.tick or 0.0)
    lost = sum(
        round(((after.tick or 0.0) - (before.tick or 0.0)) / MINUTE) - 1 - after.missed
        for before, after in itertools.pairwise(unique)
    )
    return doubled, lost


def runs(path: Path) -> list[float]:
    """The ticks the job ran for, from both processes, in the order they ran."""
    return [float(line.split()[1]) for line in path.read_text().splitlines()] if path.exists() else []


async def setup(primary: str, topic_name: str, tmp_path: Path) -> dict[str, str]:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, topic_name)
    await create_topic(primary, f"{group}.schedule")
    return {
        "SCHEDULE_BOOTSTRAP": primary,
        "SCHEDULE_GROUP": group,
        "SCHEDULE_JOBS": topic_name,
        "SCHEDULE_RUNS": str(tmp_path / "runs"),
        "SCHEDULE_ORIGIN": str(time.time()),
    }


def last_schedule_event(log: Path) -> str | None:
    lines = [
        line
        for line in log.read_text().splitlines()
        if "schedule.assigned" in line or "schedule.revoked" in line
    ]
    return None if not lines else ("assigned" if "schedule.assigned" in lines[-1] else "revoked")


def stop(*workers: subprocess.Popen[bytes]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


async def test_two_processes_enqueue_each_tick_once_and_run_it_once(
    primary: str, topic_name: str, tmp_path: Path
) -> None:
    env = await setup(primary, topic_name, tmp_path)
    first = start_worker(env, tmp_path / "first.log", APP)
    second = start_worker(env, tmp_path / "second.log", APP)
    try:
        await eventually_true(
            lambda: _at_least(primary, topic_name, 10), within=180, what="ten ticks enqueued"
        )
        settled = await enqueued(primary, topic_name)
        await eventually(
            lambda: {e.tick for e in settled} <= set(runs(tmp_path / "runs")),
            within=60,
            what="those ticks' runs",
        )
    finally:
        stop(first, second)

    envelopes = await enqueued(primary, topic_name)
    assert doubled_and_lost(envelopes) == (0, 0)
    ran = runs(tmp_path / "runs")
    assert len(ran) == len(set(ran)), f"a tick ran twice: {ran}"
    assert set(ran) <= {e.tick for e in envelopes}


async def test_kill_9_of_the_scheduler_hands_over_without_doubling_or_losing_a_tick(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = await setup(primary, topic_name, tmp_path)
    logs = {"first": tmp_path / "first.log", "second": tmp_path / "second.log"}
    workers = {
        "first": start_worker(env, logs["first"], APP),
        "second": start_worker(env, logs["second"], APP),
    }
    survivor = None
    try:
        await eventually_true(
            lambda: _at_least(primary, topic_name, 5), within=180, what="five ticks enqueued"
        )
        await eventually(
            lambda: (
                sorted(str(last_schedule_event(log)) for log in logs.values())
                in (["None", "assigned"], ["assigned", "revoked"])
            ),
            within=60,
            what="one scheduler among the two",
        )
        scheduler = next(name for name, log in logs.items() if last_schedule_event(log) == "assigned")
        survivor = "second" if scheduler == "first" else "first"
        workers[scheduler].send_signal(signal.SIGKILL)
        workers[scheduler].wait()
        killed_at = time.monotonic()
        before = len(await enqueued(primary, topic_name))

        await eventually(
            lambda: last_schedule_event(logs[survivor]) == "assigned",
            within=120,
            what="the survivor taking over",
        )
        took_over_in = time.monotonic() - killed_at
        await eventually_true(
            lambda: _at_least(primary, topic_name, before + 3),
            within=120,
            what="three ticks from the survivor",
        )
    finally:
        if survivor is not None:
            stop(workers[survivor])
        else:
            stop(*workers.values())

    envelopes = await enqueued(primary, topic_name)
    doubled, lost = doubled_and_lost(envelopes)
    missed = sum(e.missed for e in envelopes)
    with capsys.disabled():
        print(
            f"\nschedule-kill-9: enqueued={len(envelopes)} doubled={doubled} lost={lost} missed={missed} "
            f"(counted by the runs after them) took_over_in={took_over_in:.1f}s"
        )
    assert (doubled, lost) == (0, 0)
    assert any(e.missed > 0 for e in envelopes[before:]), "the takeover should have found missed ticks"
    ran = set(runs(tmp_path / "runs"))
    assert {e.tick for e in envelopes[:before]} <= ran, "a run enqueued before the kill never ran"


async def _at_least(bootstrap: str, topic: str, count: int) -> bool:
    return len(await enqueued(bootstrap, topic)) >= count
