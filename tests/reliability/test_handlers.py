"""Handlers that misbehave in ways a batch failure does not cover: each scenario ends in the
suite's accounting line, and consumption never stops silently."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

import anyio
import pytest

from aiostream_kafka import App, Backoff, HandlerCancelledError, Messages, ProcessingTimeoutError
from tests.helpers import Events, eventually
from tests.reliability.scenario import Item, Report, Sink, produce_workload

pytestmark = pytest.mark.slow

COUNT = 600
QUICK_RETRY = Backoff(initial=0.05, maximum=0.2, jitter=0)


def sink_app(primary: str, name: str) -> App:
    return App(
        name,
        kafka={"bootstrap_servers": primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        retry_backoff=QUICK_RETRY,
    )


def assert_failed(events: Events, times: int, kind: type[Exception], saying: str) -> None:
    """The batches failed ``times`` times (at least once), every time with ``kind`` ``saying`` so."""
    failures = events.named("batch.failed")
    assert len(failures) == times > 0
    assert all(isinstance(e["error"], kind) and saying in str(e["error"]) for e in failures)


async def test_a_handler_that_raises_cancelled_error_fails_its_batch_and_consumption_goes_on(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, 3)
    sink = Sink(tmp_path / "sink.db")
    app = sink_app(primary, "cancelling")
    events = Events(app)
    cancelled_once: set[int] = set()

    @app.route(topic_name, payload=Item, max_messages=20)
    async def handle(messages: Messages[Item]) -> None:
        first = messages[0].payload.id
        if first % 100 < 20 and first not in cancelled_once:  # a cancelled future it awaited
            cancelled_once.add(first)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.cancel()
            await future
        sink.record([(m.payload.id, m.partition, m.offset, "cancelling") for m in messages])

    async with app.running():
        await eventually(lambda: sink.count() == COUNT, within=120, what="every message")
        assert (app.state, app.failure) == ("running", None)

    report = Report.of("handler-raises-cancelled", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert_failed(
        events, len(cancelled_once), HandlerCancelledError, "raised CancelledError, but nothing cancelled"
    )


async def test_a_hung_handler_holds_up_only_its_own_partition_and_is_reported(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, 3)
    sink = Sink(tmp_path / "sink.db")
    app = App(
        "hung",
        kafka={"bootstrap_servers": primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        slow_batch_after=1.0,
    )
    events = Events(app)
    release = anyio.Event()

    @app.route(topic_name, payload=Item, max_messages=20)
    async def handle(messages: Messages[Item]) -> None:
        if messages.partition == 1:
            await release.wait()  # hangs, as if an upstream call never answered
        sink.record([(m.payload.id, m.partition, m.offset, "hung") for m in messages])

    async with app.running():
        await eventually(lambda: events.count("batch.slow") == 1, what="partition 1 reported slow")
        later = list(range(COUNT, COUNT + 300))  # produced while partition 1 hangs
        for i in later:
            await app.producer.produce_nowait(topic_name, Item(i), partition=(i % 2) * 2)  # 0 and 2
        await app.producer.flush()
        others = [*(i for i in produced if i % 3 != 1), *later]
        await eventually(
            lambda: {row[0] for row in sink.rows()} >= set(others), within=120, what="partitions 0 and 2"
        )
        while_hung = Report.of("hung-handler:other-partitions", others, sink)
        [slow] = events.named("batch.slow")
        release.set()
        await eventually(lambda: sink.count() == COUNT + len(later), within=120, what="partition 1, released")

    report = Report.of("hung-handler:after-release", [*produced, *later], sink)
    while_hung.write(capsys)
    report.write(capsys)
    assert (while_hung.lost, report.lost) == (0, 0)
    assert (slow["topic"], slow["partition"], slow["offset"]) == (topic_name, 1, 0)
    assert slow["duration"] >= 1.0
    assert slow["handler"].endswith("handle")


async def test_a_batch_past_its_processing_timeout_is_cancelled_and_retried(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, 3)
    sink = Sink(tmp_path / "sink.db")
    app = sink_app(primary, "timeouts")
    events = Events(app)
    timed_out: set[int] = set()

    @app.route(topic_name, payload=Item, max_messages=20, processing_timeout=0.5)
    async def handle(messages: Messages[Item]) -> None:
        first = messages[0].payload.id
        if first % 200 < 20 and first not in timed_out:
            timed_out.add(first)
            await anyio.sleep_forever()
        sink.record([(m.payload.id, m.partition, m.offset, "timeouts") for m in messages])

    async with app.running():
        await eventually(lambda: sink.count() == COUNT, within=120, what="every message")

    report = Report.of("processing-timeout", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert_failed(events, len(timed_out), ProcessingTimeoutError, "took longer than processing_timeout=0.5s")


async def test_a_handler_that_blocks_the_event_loop_past_the_session_costs_no_duplicates(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """time.sleep in a handler stops heartbeats: the group evicts the member and its commits
    fail; when it gets its partitions back, what it had processed is not processed again."""
    count = 60
    produced = await produce_workload(primary, topic_name, count, 3)
    sink = Sink(tmp_path / "sink.db")
    app = App(
        "blocking",
        kafka={"bootstrap_servers": primary, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )
    events = Events(app)

    @app.route(topic_name, payload=Item, max_messages=10)
    async def handle(messages: Messages[Item]) -> None:
        time.sleep(3)  # noqa: ASYNC251 -- the point: a poll of 3 partitions blocks 9 s, past the session
        sink.record([(m.payload.id, m.partition, m.offset, "blocking") for m in messages])

    async with app.running():
        await eventually(lambda: sink.count() == count, within=300, what="every message")

    report = Report.of("loop-blocking-handler", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert events.count("error.occurred", type="commit") >= 1  # the eviction happened
    assert report.duplicates == 0


async def test_a_handler_that_ignores_cancellation_is_timed_out_set_aside_and_retried(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """processing_timeout cannot stop a handler that swallows CancelledError, but it still
    counts as timed out, and the slow batch holds up no other partition meanwhile."""
    produced = await produce_workload(primary, topic_name, COUNT, 3)
    sink = Sink(tmp_path / "sink.db")
    app = App(
        "stubborn",
        kafka={"bootstrap_servers": primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        retry_backoff=QUICK_RETRY,
        slow_batch_after=1.0,
    )
    events = Events(app)
    release = anyio.Event()
    stubborn: list[int] = []

    @app.route(topic_name, payload=Item, max_messages=20, processing_timeout=0.5)
    async def handle(messages: Messages[Item]) -> None:
        if messages.partition == 0 and not stubborn:
            stubborn.append(messages.first_offset)
            while not release.is_set():  # the point: a cancellation does not stop it
                with contextlib.suppress(asyncio.CancelledError):
                    await release.wait()
        sink.record([(m.payload.id, m.partition, m.offset, "stubborn") for m in messages])

    others = [i for i in produced if i % 3 != 0]
    async with app.running():
        await eventually(lambda: events.count("batch.slow", partition=0) == 1, what="the stubborn batch")
        await eventually(
            lambda: {row[0] for row in sink.rows()} >= set(others), within=120, what="partitions 1 and 2"
        )
        release.set()
        await eventually(lambda: sink.count() == COUNT, within=120, what="partition 0, retried")

    report = Report.of("handler-ignores-cancellation", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert_failed(events, 1, ProcessingTimeoutError, "took longer than processing_timeout=0.5s")
