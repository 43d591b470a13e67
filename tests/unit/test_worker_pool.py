"""The parent of ``run --processes N``: restarts what dies, replaces what hangs, gives up on
what keeps failing, and stops everything gracefully.

The policies are pure functions of times and are tested as such; the pool itself runs
tiny fake workers (tests/unit/fake_worker.py), so no app and no Kafka are involved.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

from aiostream_kafka import Backoff, Monitor
from aiostream_kafka.runtime.heartbeat import (
    BEAT,
    JOINED,
    READY,
    HeartbeatReader,
    HeartbeatSender,
    Liveness,
    overdue,
)
from aiostream_kafka.runtime.signals import REPEAT_WINDOW
from aiostream_kafka.runtime.workers import RestartPolicy, WorkerCommand, WorkerPool
from tests.helpers import eventually, within

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")
NO_JITTER = Backoff(initial=1.0, maximum=8.0, jitter=0)


# --- when to restart, and when to give up --------------------------------------------------


def test_restarts_back_off_exponentially_as_failures_accumulate() -> None:
    policy = RestartPolicy(NO_JITTER, max_failures=10, window=300)

    delays = [policy.next_restart([0.0] * n, now=1.0) for n in range(1, 6)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_the_pool_gives_up_on_the_nth_failure_within_the_window() -> None:
    policy = RestartPolicy(NO_JITTER, max_failures=3, window=60)

    assert policy.next_restart([10.0, 20.0], now=20.0) == 2.0
    assert policy.next_restart([10.0, 20.0, 30.0], now=30.0) is None


def test_failures_older_than_the_window_are_forgotten_and_the_backoff_starts_over() -> None:
    policy = RestartPolicy(NO_JITTER, max_failures=3, window=60)

    assert policy.next_restart([0.0, 10.0, 100.0], now=100.0) == 1.0


# --- when a worker is hung -----------------------------------------------------------------


def judge(*, ready_at: float | None, last_beat: float, now: float) -> str | None:
    return overdue(
        started_at=0.0,
        ready_at=ready_at,
        last_beat=last_beat,
        now=now,
        startup_timeout=60,
        heartbeat_timeout=30,
    )


def test_a_starting_worker_may_be_silent_until_the_startup_timeout() -> None:
    assert judge(ready_at=None, last_beat=0.0, now=59.0) is None
    assert judge(ready_at=None, last_beat=0.0, now=61.0) == "did not start its app within 60s"


def test_a_ready_worker_is_hung_once_its_last_beat_is_older_than_the_heartbeat_timeout() -> None:
    assert judge(ready_at=5.0, last_beat=70.0, now=99.0) is None
    assert judge(ready_at=5.0, last_beat=70.0, now=101.0) == (
        "sent no heartbeat for 31.0s (timeout 30s): its loop is stuck"
    )


def test_workers_beat_several_times_per_timeout_so_one_late_beat_is_no_hang() -> None:
    assert Liveness(heartbeat_timeout=30).interval == 2.0
    assert Liveness(heartbeat_timeout=2).interval == 0.5


def test_the_reader_sees_beats_and_readiness_through_the_pipe() -> None:
    read_fd, write_fd = os.pipe()
    reader = HeartbeatReader(read_fd, started_at=0.0)
    sender = HeartbeatSender(write_fd, interval=1.0)
    try:
        reader.drain(now=1.0)
        assert (reader.last_beat, reader.ready_at) == (0.0, None)

        os.write(write_fd, BEAT)
        reader.drain(now=2.0)
        assert (reader.last_beat, reader.ready_at) == (2.0, None)

        sender.ready()
        reader.drain(now=3.0)
        assert (reader.last_beat, reader.ready_at) == (3.0, 3.0)

        reader.drain(now=4.0)  # nothing new: the last beat stays where it was
        assert reader.last_beat == 3.0
    finally:
        reader.close()
        os.close(write_fd)


class TwoGroupApp:
    """A Servable whose two consumers join one after the other, then it waits to be stopped."""

    def __init__(self) -> None:
        self.monitor = Monitor()
        self.topology = SimpleNamespace(subscription_groups=["primary/svc/default", "analytics/svc/default"])
        self.steps: list[Callable[[], None]] = []
        self.stop = anyio.Event()

    async def serve(self) -> None:
        self.monitor.emit("app.started", cluster="primary")
        for step in self.steps:
            step()
        await self.stop.wait()

    def assigned(self, cluster: str) -> Callable[[], None]:
        tags = {"cluster": cluster, "group": "svc", "subscription_group": "default"}
        return lambda: self.monitor.emit("partitions.assigned", **tags, partitions=[])


async def test_a_worker_says_it_joined_once_every_consumer_has_its_partitions() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    app = TwoGroupApp()
    sent: list[bytes] = []

    def read() -> bytes:
        try:
            return os.read(read_fd, 100).replace(BEAT, b"")
        except BlockingIOError:
            return b""

    def then_read() -> None:
        sent.append(read())

    app.steps = [
        then_read,
        app.assigned("primary"),
        app.assigned("primary"),  # a rebalance of the same consumer: still one of two
        then_read,
        app.assigned("analytics"),
        then_read,
        app.assigned("analytics"),
        then_read,
        app.stop.set,
    ]
    try:
        with within(30, "the worker's app to serve its steps"):
            await HeartbeatSender(write_fd, interval=60).serve(app)
    finally:
        os.close(read_fd)
        os.close(write_fd)

    assert sent == [READY, b"", JOINED, b""]


async def test_an_orphaned_worker_stops_itself_as_sigterm_would(monkeypatch: pytest.MonkeyPatch) -> None:
    raised: list[int] = []
    monkeypatch.setattr("signal.raise_signal", raised.append)
    read_fd, write_fd = os.pipe()
    sender = HeartbeatSender(write_fd, interval=0.01)
    os.close(read_fd)  # the parent is gone

    with within(30, "the orphaned worker's beat to notice its parent is gone"):
        await sender.beat()

    os.close(write_fd)
    assert raised == [signal.SIGTERM]


# --- the pool with fake workers ------------------------------------------------------------

QUICK = RestartPolicy(Backoff(initial=0.01, maximum=0.01, jitter=0), max_failures=3, window=60)


def fake(state: Path, behaviours: Mapping[int, str]) -> WorkerCommand:
    def command(number: int, heartbeat_fd: int, interval: float) -> list[str]:
        return [
            sys.executable,
            str(FAKE_WORKER),
            behaviours[number],
            str(heartbeat_fd),
            str(interval),
            str(state),
        ]

    return command


def starts(state: Path, number: int) -> int:
    path = state / f"starts-{number}"
    return len(path.read_text().split()) if path.exists() else 0


def pool_of(state: Path, behaviours: Mapping[int, str], **options: object) -> WorkerPool:
    settings: dict[str, object] = {"restarts": QUICK, "tick": 0.05, **options}
    return WorkerPool(fake(state, behaviours), len(behaviours), **settings)  # type: ignore[arg-type]


def logged(caplog: pytest.LogCaptureFixture) -> Callable[[str], int]:
    """How many of the pool's log lines contain a text (0, falsy, when none)."""
    return lambda text: sum(text in record.getMessage() for record in caplog.records)


@pytest.fixture(autouse=True)
def pool_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiostream_kafka.workers")


async def run_beside(pool: WorkerPool, act: Callable[[], Awaitable[None]]) -> str | None:
    """Run the pool while ``act()`` drives it (stops it, signals it), and return its result."""
    result: list[str | None] = []

    async def running() -> None:
        result.append(await pool.run())

    with within(60, "the pool to end"):
        async with anyio.create_task_group() as group:
            group.start_soon(running)
            await act()
    return result[0]


async def run_until(pool: WorkerPool, ready: Callable[[], bool], what: str) -> str | None:
    """Run the pool, ``request_stop()`` once ``ready()`` holds, and return its result."""

    async def stop_when_ready() -> None:
        await eventually(ready, what=what)
        pool.request_stop()

    return await run_beside(pool, stop_when_ready)


async def test_a_worker_that_keeps_crashing_is_restarted_until_the_pool_gives_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "crash"})

    with within(60, "the pool to end"):
        result = await pool.run()

    assert result == (
        "worker-1 failed 3 times within 60s (last: exit status 3 before its app started); "
        "stopped the other workers"
    )
    assert starts(tmp_path, 1) == 3
    assert logged(caplog)("worker-1 exit status 3 before its app started; restarting it in 0.0s")
    assert logged(caplog)("worker-1 restarted")


async def test_giving_up_stops_the_other_workers_gracefully(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "crash", 2: "obedient"})

    with within(60, "the pool to end"):
        result = await pool.run()

    assert result is not None
    assert result.startswith("worker-1 failed 3 times")
    assert logged(caplog)("worker-2 stopped (exit status 0)")


async def test_a_stop_is_passed_on_to_every_worker_and_waits_for_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "obedient", 2: "obedient"})
    seen = logged(caplog)

    result = await run_until(
        pool, lambda: bool(seen("worker-1 ready") and seen("worker-2 ready")), "both ready"
    )

    assert result is None
    assert seen("worker-1 stopped (exit status 0)")
    assert seen("worker-2 stopped (exit status 0)")
    assert (starts(tmp_path, 1), starts(tmp_path, 2)) == (1, 1)


async def test_a_second_sigterm_is_passed_on_so_that_the_workers_stop_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "drains"})  # stops only on a second SIGTERM; the stop timeout is 40s
    seen = logged(caplog)

    async def sigterm_thrice() -> None:
        await eventually(lambda: bool(seen("worker-1 ready")), what="the worker ready")
        signal.raise_signal(signal.SIGTERM)
        await eventually(lambda: bool(seen("SIGTERM: stopping 1 worker(s)")), what="the stop")
        signal.raise_signal(signal.SIGTERM)  # at once: timeout(1) repeats it so, the same stop
        await eventually(lambda: bool(seen("SIGTERM again: already stopping")), what="the repeat")
        # Not a look after a wait: the time itself is the input. A SIGTERM this long after the
        # first (which came before the line just seen) is a new request, whatever the load.
        await anyio.sleep(REPEAT_WINDOW)
        signal.raise_signal(signal.SIGTERM)

    result = await run_beside(pool, sigterm_thrice)

    assert seen("SIGTERM again: telling the workers to stop at once")
    assert result == "worker-1 stopped with exit status 1"


async def test_a_worker_that_ignores_the_stop_is_killed_after_the_stop_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "stubborn"}, stop_timeout=0.5)

    result = await run_until(pool, lambda: logged(caplog)("worker-1 ready") == 1, "the worker ready")

    assert result == "worker-1 did not stop within 0.5s and was killed"


async def test_a_worker_whose_heartbeat_stops_is_killed_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "hangs-once"}, liveness=Liveness(heartbeat_timeout=0.5))
    seen = logged(caplog)

    result = await run_until(pool, lambda: seen("worker-1 ready") == 2, "the replacement ready")

    assert result is None
    assert seen("its loop is stuck; killing it") == 1
    assert seen("worker-1 restarted")
    assert starts(tmp_path, 1) == 2


async def test_a_worker_that_never_becomes_ready_counts_as_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "mute"}, liveness=Liveness(startup_timeout=0.3))

    with within(60, "the pool to end"):
        result = await pool.run()

    assert result is not None
    assert "failed 3 times within 60s (last: did not start its app within 0.3s)" in result


async def test_a_worker_that_ends_with_status_0_by_itself_is_not_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(tmp_path, {1: "done"})

    with within(60, "the pool to end"):
        result = await pool.run()

    assert result is None
    assert starts(tmp_path, 1) == 1
    assert logged(caplog)("worker-1 ended on its own with exit status 0")
