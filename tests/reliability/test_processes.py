"""``aiostream-kafka run APP --processes N`` on real Kafka: a worker killed under load is
restarted and nothing is lost, SIGTERM stops every worker gracefully, a hung worker is
replaced, workers that keep failing make the parent give up, and workers whose parent
is killed stop by themselves."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from tests.helpers import committed_offsets, create_topic, eventually, produce
from tests.reliability.scenario import (
    Report,
    Sink,
    end_pool,
    is_worker,
    produce_workload,
    start_pool,
    worker_pids,
)

pytestmark = pytest.mark.slow

SINK_APP = "tests.reliability.sink_app:app"
COUNT = 10_000
PARTITIONS = 6
MAX_MESSAGES = 50


def sink_env(primary: str, topic: str, sink: Sink, **extra: str) -> dict[str, str]:
    return {
        "SINK_BOOTSTRAP": primary,
        "SINK_TOPIC": topic,
        "SINK_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "SINK_PATH": sink.path,
        "SINK_MAX_MESSAGES": str(MAX_MESSAGES),
        "SINK_BATCH_DELAY": "0.2",  # slow enough to be caught mid-stream
        **extra,
    }


def parent_says(log: Path, text: str) -> bool:
    return text in log.read_text()


async def test_kill_9_of_one_worker_under_load_is_restarted_and_nothing_is_lost(
    primary: str, topic_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    produced = await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    sink = Sink(tmp_path / "sink.db")  # the worker column is the pid of the process that handled it
    log = tmp_path / "pool.log"

    parent = start_pool(SINK_APP, 2, sink_env(primary, topic_name, sink, SINK_BATCH_DELAY="0.1"), log)
    try:
        await eventually(lambda: len(worker_pids(log)) == 2, within=60, what="two workers ready")
        await eventually(lambda: sink.count() >= COUNT // 4, within=60, what="a quarter of the workload")
        victim = worker_pids(log)["worker-1"]
        os.kill(victim, signal.SIGKILL)
        await eventually(
            lambda: worker_pids(log)["worker-1"] != victim, within=30, what="worker-1 replaced and ready"
        )
        await eventually(lambda: sink.count() == COUNT, within=120, what="the whole workload")
    finally:
        status = end_pool(parent, log)

    report = Report.of("processes-kill-9", produced, sink)
    report.write(capsys)
    assert report.lost == 0
    assert report.duplicates <= PARTITIONS * MAX_MESSAGES  # at most the batches in the victim's hands
    assert parent_says(log, "worker-1 killed by SIGKILL; restarting it in")
    replacement = str(worker_pids(log)["worker-1"])
    assert any(row[3] == replacement for row in sink.rows()), "the replacement took its share"
    assert status == 0


async def test_sigterm_to_the_parent_stops_every_worker_gracefully_and_exits_0(
    primary: str, topic_name: str, tmp_path: Path
) -> None:
    await produce_workload(primary, topic_name, COUNT, PARTITIONS)
    sink = Sink(tmp_path / "sink.db")
    env = sink_env(primary, topic_name, sink, SINK_SHUTDOWN_TIMEOUT="10")
    log = tmp_path / "pool.log"

    parent = start_pool(SINK_APP, 2, env, log)
    try:
        await eventually(lambda: len(worker_pids(log)) == 2, within=60, what="two workers ready")
        await eventually(lambda: sink.count() >= COUNT // 4, within=60, what="a quarter of the workload")
        workers = worker_pids(log).values()
        parent.send_signal(signal.SIGTERM)
        status = parent.wait(timeout=60)
    finally:
        end_pool(parent, log)

    assert status == 0, log.read_text()[-3000:]
    # Each within the app's shutdown timeout: nothing in hand had to be cut short.
    assert log.read_text().count("app.stopped cluster=primary abandoned=[]") == 2
    assert not any(is_worker(pid) for pid in workers)
    assert parent_says(log, "worker-1 stopped (exit status 0)")
    assert parent_says(log, "worker-2 stopped (exit status 0)")
    assert sink.count() < COUNT, "the stop came too late to be mid-stream"
    processed_up_to: dict[TopicPartition, int] = {}
    for _, partition, offset, _ in sink.rows():
        tp = TopicPartition(topic_name, partition)
        processed_up_to[tp] = max(processed_up_to.get(tp, 0), offset + 1)
    assert await committed_offsets(primary, env["SINK_GROUP"]) == processed_up_to  # both committed their work


async def test_a_worker_whose_handler_blocks_the_event_loop_is_replaced(
    primary: str, topic_name: str, tmp_path: Path
) -> None:
    await create_topic(primary, topic_name, 1)
    await produce(primary, topic_name, b"the message that hangs its first handler")
    env = {
        "HANG_APP_BOOTSTRAP": primary,
        "HANG_APP_TOPIC": topic_name,
        "HANG_APP_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "HANG_APP_MARKERS": str(tmp_path),
    }
    log = tmp_path / "pool.log"

    parent = start_pool("tests.reliability.hang_app:app", 2, env, log, "--heartbeat-timeout", "3")
    try:
        await eventually(lambda: (tmp_path / "hung").exists(), within=60, what="a handler to hang")
        hung = int((tmp_path / "hung").read_text())
        await eventually(
            lambda: (tmp_path / "handled").exists(), within=60, what="another worker to handle it"
        )
    finally:
        status = end_pool(parent, log)

    output = log.read_text()
    assert f"(pid {hung}) sent no heartbeat for" in output
    assert "its loop is stuck; killing it" in output
    assert int((tmp_path / "handled").read_text()) != hung
    assert " restarted (pid " in output
    assert not is_worker(hung)
    assert status == 0, output[-3000:]


async def test_workers_that_always_crash_at_start_make_the_parent_give_up(tmp_path: Path) -> None:
    log = tmp_path / "pool.log"

    parent = start_pool("tests.reliability.crash_app:app", 2, {}, log)
    try:
        status = parent.wait(timeout=60)
    finally:
        end_pool(parent, log)

    output = log.read_text()
    assert status == 1, output[-3000:]
    assert output.count("RuntimeError: the vault that holds this worker's secrets is unreachable") >= 5
    last_line = output.strip().splitlines()[-1]
    assert last_line.startswith("error: worker-")
    assert (
        "failed 5 times within 300s (last: exit status 1 before its app started); stopped the other"
        in last_line
    )


async def test_workers_whose_parent_is_killed_stop_themselves_gracefully(
    primary: str, topic_name: str, tmp_path: Path
) -> None:
    await create_topic(primary, topic_name, 2)
    sink = Sink(tmp_path / "sink.db")
    log = tmp_path / "pool.log"

    parent = start_pool(SINK_APP, 2, sink_env(primary, topic_name, sink), log)
    try:
        await eventually(lambda: len(worker_pids(log)) == 2, within=60, what="two workers ready")
        workers = list(worker_pids(log).values())
        parent.kill()
        parent.wait()
        await eventually(
            lambda: not any(is_worker(pid) for pid in workers), within=60, what="the orphans to stop"
        )
    finally:
        end_pool(parent, log)

    assert log.read_text().count("aiostream_kafka: app.stopped") == 2  # a graceful stop, not a death
