"""``produce_many`` through a crash: a forwarding app killed with ``kill -9`` while its
batches are in flight, then restarted, has forwarded every message at least once."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from msgspec.json import decode

from tests.helpers import create_topic, eventually_true, read_every_partition, total_end_offset
from tests.reliability.scenario import Item, Report, Sink, produce_workload, start_worker

pytestmark = pytest.mark.slow

COUNT = 10_000
PARTITIONS = 6
FORWARDER = "tests.reliability.forward_app:app"


async def forwarded(bootstrap: str, topic: str) -> list[tuple[int, int, int]]:
    """(id, partition, offset) of every record of ``topic``."""
    stored = await read_every_partition(bootstrap, topic, PARTITIONS)
    return [(decode(r.value, type=Item).id, p, offset) for (p, offset), r in stored.items()]


async def test_kill_9_of_a_forwarder_with_produce_many_in_flight_loses_nothing(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    target = f"{topic_name}.forwarded"
    await create_topic(primary, target, PARTITIONS)
    env = {
        "FORWARD_BOOTSTRAP": primary,
        "FORWARD_SOURCE": topic_name,
        "FORWARD_TARGET": target,
        "FORWARD_GROUP": f"g-{uuid.uuid4().hex[:8]}",
    }
    log = tmp_path / "forwarder.log"

    first = start_worker(env, log, FORWARDER)
    try:
        await eventually_true(
            lambda: at_least(primary, target, COUNT // 3), within=120, what="a third forwarded"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert await total_end_offset(primary, target, PARTITIONS) < COUNT, (
        "the kill came too late to be mid-stream"
    )

    second = start_worker(env, log, FORWARDER)
    try:
        await eventually_true(lambda: all_forwarded(primary, target), within=180, what="every id forwarded")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)

    sink = Sink(tmp_path / "forwarded.db")
    sink.record(
        [(id_, partition, offset, "forwarded") for id_, partition, offset in await forwarded(primary, target)]
    )
    report = Report.of("produce-many-kill-9", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert "batch.produced topic=" in log.read_text()  # through produce_many's own batches


async def at_least(bootstrap: str, topic: str, count: int) -> bool:
    return await total_end_offset(bootstrap, topic, PARTITIONS) >= count


async def all_forwarded(bootstrap: str, topic: str) -> bool:
    return len({id_ for id_, _, _ in await forwarded(bootstrap, topic)}) == COUNT
