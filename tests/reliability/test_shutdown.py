"""SIGTERM is a graceful stop: the batch in hand finishes, is committed, and the exit status is 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import pytest
from aiokafka import TopicPartition

from tests.helpers import committed_offsets, eventually, produce

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_during_a_slow_batch_lets_it_finish_commits_and_exits_0(
    primary: str, topic_name: str, tmp_path: Path, sig: signal.Signals
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(primary, topic_name, b"slow one")
    env = {
        **os.environ,
        "SLOW_APP_BOOTSTRAP": primary,
        "SLOW_APP_TOPIC": topic_name,
        "SLOW_APP_GROUP": group,
        "SLOW_APP_MARKERS": str(tmp_path),
    }
    log = tmp_path / "app.log"
    with log.open("w") as out:
        process = await anyio.open_process(
            [sys.executable, "-m", "aiostream_kafka", "run", "tests.reliability.slow_app:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await eventually(lambda: (tmp_path / "started").exists(), within=30, what="the batch to start")
        sent = time.monotonic()
        process.send_signal(sig)
        with anyio.fail_after(30):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    output = log.read_text()

    assert process.returncode == 0, output
    assert (tmp_path / "finished").read_text() == "0"
    assert time.monotonic() - sent >= 1.5  # it waited for the handler instead of cutting it short
    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 1}
    assert "app.stopped" in output
