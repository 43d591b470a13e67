"""An exactly-once pipeline under load, through a ``kill -9`` of its worker and through a
second worker joining mid-stream: its output, read committed, holds every input once."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from msgspec.json import decode

from tests.helpers import create_topic, eventually, eventually_true, read_committed, total_end_offset
from tests.reliability.scenario import Item, Report, Sink, produce_workload, start_worker

pytestmark = pytest.mark.slow

COUNT = 10_000
PARTITIONS = 6
PIPELINE = "tests.reliability.exactly_once_app:app"


async def committed_output(bootstrap: str, topic: str) -> list[tuple[int, int, int]]:
    """(id, partition, offset) of every record of ``topic`` a read-committed consumer sees."""
    records = await read_committed(bootstrap, topic, PARTITIONS)
    return [(decode(r.value, type=Item).id, r.partition, r.offset) for r in records]


def environment(primary: str, source: str, target: str) -> dict[str, str]:
    return {
        "EOS_BOOTSTRAP": primary,
        "EOS_SOURCE": source,
        "EOS_TARGET": target,
        "EOS_GROUP": f"g-{uuid.uuid4().hex[:8]}",
    }


async def account(scenario: str, primary: str, target: str, produced: list[int], tmp_path: Path) -> Report:
    sink = Sink(tmp_path / f"{scenario}.db")
    sink.record(
        [
            (id_, partition, offset, "output")
            for id_, partition, offset in await committed_output(primary, target)
        ]
    )
    return Report.of(scenario, produced, sink)


async def all_forwarded(bootstrap: str, topic: str) -> bool:
    return len({id_ for id_, _, _ in await committed_output(bootstrap, topic)}) == COUNT


async def test_kill_9_of_an_exactly_once_worker_neither_duplicates_nor_loses_output(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    target = f"{topic_name}.out"
    await create_topic(primary, target, PARTITIONS)
    env = environment(primary, topic_name, target)
    log = tmp_path / "pipeline.log"

    first = start_worker(env, log, PIPELINE)
    try:
        await eventually_true(
            lambda: at_least(primary, target, COUNT // 3), within=120, what="a third forwarded"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert len(await committed_output(primary, target)) < COUNT, "the kill came too late to be mid-stream"

    second = start_worker(env, log, PIPELINE)
    try:
        await eventually_true(lambda: all_forwarded(primary, target), within=180, what="every id forwarded")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)

    report = await account("exactly-once-kill-9", primary, target, produced, tmp_path)
    report.write(capsys)
    assert (report.duplicates, report.lost) == (0, 0)


async def test_a_second_exactly_once_worker_joining_mid_stream_neither_duplicates_nor_loses_output(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    target = f"{topic_name}.out"
    await create_topic(primary, target, PARTITIONS)
    # Slower batches than the kill scenario's: the work outlasts the second worker's start.
    env = {**environment(primary, topic_name, target), "EOS_BATCH_DELAY": "0.3"}
    log = tmp_path / "pipeline.log"

    first = start_worker(env, log, PIPELINE)
    second = None
    try:
        await eventually_true(
            lambda: at_least(primary, target, COUNT // 3), within=120, what="a third forwarded"
        )
        second = start_worker(env, log, PIPELINE)  # joins the group: a rebalance mid-stream
        await eventually(lambda: revoked(log), within=120, what="the rebalance the second worker causes")
        assert len(await committed_output(primary, target)) < COUNT, "the rebalance came after the work"
        await eventually_true(lambda: all_forwarded(primary, target), within=180, what="every id forwarded")
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
        for worker in (first, second):
            if worker is not None:
                worker.wait(timeout=60)

    report = await account("exactly-once-rebalance", primary, target, produced, tmp_path)
    report.write(capsys)
    assert (report.duplicates, report.lost) == (0, 0)


def revoked(log: Path) -> bool:
    """Whether a worker has logged giving partitions up (what a rebalance does to the first)."""
    return "partitions.revoked" in log.read_text()


async def at_least(bootstrap: str, topic: str, count: int) -> bool:
    return await total_end_offset(bootstrap, topic, PARTITIONS, read_committed=True) >= count
