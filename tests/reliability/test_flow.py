"""Filtering, throttling and delays through kill -9: nothing the route should handle is lost,
nothing it filtered is handled, and the group ends committed past every record."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from tests.helpers import committed_offsets, eventually, eventually_true
from tests.reliability.scenario import Report, Sink, produce_workload, start_worker

pytestmark = pytest.mark.slow

COUNT = 10_000
PARTITIONS = 6
MAX_MESSAGES = 50
APP = "tests.reliability.flow_app:app"
SKIPPED_EVERY = 10  # the app filters out every tenth item


async def test_flow_kill_9_mid_stream_then_restart_loses_nothing(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    wanted = [i for i in produced if i % SKIPPED_EVERY != 0]
    sink = Sink(tmp_path / "sink.db")
    group = f"g-{uuid.uuid4().hex[:8]}"
    env = {
        "SINK_BOOTSTRAP": primary,
        "SINK_TOPIC": topic_name,
        "SINK_GROUP": group,
        "SINK_PATH": sink.path,
        "SINK_SKIP_EVERY": str(SKIPPED_EVERY),
    }

    first = start_worker({**env, "SINK_WORKER": "first"}, tmp_path / "first.log", APP)
    try:
        await eventually(lambda: sink.count() >= len(wanted) // 3, within=120, what="a third of the workload")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert sink.count() < len(wanted), "the crash came too late to be mid-stream"

    second = start_worker({**env, "SINK_WORKER": "second"}, tmp_path / "second.log", APP)
    try:
        await eventually(
            lambda: len({row[0] for row in sink.rows()}) == len(wanted),
            within=180,
            what="the restart to finish the workload",
        )

        async def committed_past_everything() -> bool:
            committed = await committed_offsets(primary, group)
            ends = {
                TopicPartition(topic_name, p): COUNT // PARTITIONS + (p < COUNT % PARTITIONS)
                for p in range(PARTITIONS)
            }
            return all(committed.get(tp) == end for tp, end in ends.items())

        await eventually_true(
            committed_past_everything, within=120, what="offsets committed past every record"
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    report = Report.of("flow-crash", wanted, sink)
    report.write(capsys)
    handled = {row[0] for row in sink.rows()}
    assert report.lost == 0
    assert not handled & {i for i in produced if i % SKIPPED_EVERY == 0}  # filtered ones never handled
    assert report.duplicates <= PARTITIONS * MAX_MESSAGES  # at most the batch in hand, per partition
