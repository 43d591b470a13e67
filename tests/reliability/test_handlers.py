"""Handlers that misbehave in ways a batch failure does not cover: each scenario ends in the
suite's accounting line, and consumption never stops silently."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from aiostream_kafka import App, Backoff, HandlerCancelledError, Messages
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
    failures = events.named("batch.failed")
    assert len(failures) == len(cancelled_once) > 0
    assert all(isinstance(e["error"], HandlerCancelledError) for e in failures)
    assert "handle raised CancelledError, but nothing cancelled it" in str(failures[0]["error"])
