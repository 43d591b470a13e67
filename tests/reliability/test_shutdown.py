"""SIGTERM is a graceful stop: the batch in hand finishes, is committed, and the exit status is 0.

A stop has limits too: a handler that ignores cancellation is given up on after
``shutdown_timeout`` (the process exits 1, naming it), and a second signal during the
stop means now.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import pytest
from aiokafka import TopicPartition
from anyio.abc import Process

from aiostream_kafka import App, Messages
from aiostream_kafka.errors import ShutdownError
from aiostream_kafka.runtime.signals import REPEAT_WINDOW
from tests.helpers import Events, committed_offsets, eventually, produce, within

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


async def run_cli(app: str, env: dict[str, str], log: Path, *options: str) -> Process:
    """``aiostream-kafka run APP`` in a process of its own, its output in ``log``."""
    with log.open("w") as out:
        return await anyio.open_process(
            [sys.executable, "-m", "aiostream_kafka", "run", app, *options],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def ended(process: Process, what: str, seconds: float = 60) -> int:
    """The exit status, once the process has exited; killed, and the test failed saying
    ``what`` it waited for, if that takes ``seconds``."""
    try:
        with within(seconds, what):
            return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def slow_env(primary: str, topic: str, markers: Path, **extra: str) -> dict[str, str]:
    return {
        "SLOW_APP_BOOTSTRAP": primary,
        "SLOW_APP_TOPIC": topic,
        "SLOW_APP_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "SLOW_APP_MARKERS": str(markers),
        **extra,
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_during_a_slow_batch_lets_it_finish_commits_and_exits_0(
    primary: str, topic_name: str, tmp_path: Path, sig: signal.Signals
) -> None:
    env = slow_env(primary, topic_name, tmp_path)
    await produce(primary, topic_name, b"slow one")
    log = tmp_path / "app.log"
    process = await run_cli("tests.reliability.slow_app:app", env, log)
    try:
        await eventually(lambda: (tmp_path / "started").exists(), what="the batch to start")
        process.send_signal(sig)
        await eventually(lambda: "app.stopping" in log.read_text(), what="the graceful stop to begin")
        assert not (tmp_path / "finished").exists()  # the batch is still in hand...
    finally:
        (tmp_path / "release").touch()  # ... until now: the stop waits for it, however long it takes
    status = await ended(process, "the app to stop once its batch is done")
    output = log.read_text()

    assert status == 0, output
    assert (tmp_path / "finished").read_text() == "0"
    assert await committed_offsets(primary, env["SLOW_APP_GROUP"]) == {TopicPartition(topic_name, 0): 1}
    assert "app.stopped cluster=primary abandoned=[]" in output


@pytest.mark.parametrize("processes", [None, 1], ids=["one-process", "workers"])
async def test_a_handler_that_ignores_cancellation_is_given_up_on_and_the_process_exits_1(
    primary: str, topic_name: str, tmp_path: Path, processes: int | None
) -> None:
    await produce(primary, topic_name, b"never let go")
    env = {
        "STUBBORN_APP_BOOTSTRAP": primary,
        "STUBBORN_APP_TOPIC": topic_name,
        "STUBBORN_APP_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "STUBBORN_APP_MARKERS": str(tmp_path),
    }
    log = tmp_path / "app.log"
    options = ["--processes", str(processes)] if processes else []
    process = await run_cli("tests.reliability.stubborn_app:app", env, log, *options)
    try:
        await eventually(lambda: (tmp_path / "started").exists(), what="the handler to start")
    finally:
        process.send_signal(signal.SIGTERM)
    status = await ended(process, "the stop to give up on the handler")  # shutdown_timeout is 2s
    output = log.read_text()

    assert status == 1, output
    [report] = [line for line in output.splitlines() if "type=shutdown.timeout" in line]
    assert f"{topic_name}/0 (handler tests.reliability.stubborn_app:stubborn, from offset 0" in report
    assert (
        "ignored cancellation (do they swallow CancelledError?), still running 5s after shutdown_timeout (2s)"
        in report
    )
    assert f"abandoned=['{topic_name}/0']" in output  # app.stopped: the producers were closed all the same
    assert await committed_offsets(primary, env["STUBBORN_APP_GROUP"]) == {}


@pytest.mark.parametrize("processes", [None, 1], ids=["one-process", "workers"])
async def test_a_second_sigterm_during_a_graceful_stop_stops_at_once_and_exits_1(
    primary: str, topic_name: str, tmp_path: Path, processes: int | None
) -> None:
    # A handler never released and a stop that would wait 5 minutes for it: only "now" ends this.
    env = slow_env(primary, topic_name, tmp_path, SLOW_APP_SHUTDOWN_TIMEOUT="300")
    await produce(primary, topic_name, b"slow one")
    log = tmp_path / "app.log"
    options = ["--processes", str(processes)] if processes else []  # the parent passes it on
    process = await run_cli("tests.reliability.slow_app:app", env, log, *options)
    try:
        await eventually(lambda: (tmp_path / "started").exists(), what="the batch to start")
        process.send_signal(signal.SIGTERM)
        await eventually(lambda: "app.stopping" in log.read_text(), what="the graceful stop")
        # A repeat within the window is the same signal twice (timeout(1) sends it so); this one
        # is not. Not a look after a wait: the time itself is the input.
        await anyio.sleep(REPEAT_WINDOW)
    finally:
        process.send_signal(signal.SIGTERM)
    status = await ended(process, "the second SIGTERM to stop the app at once")
    output = log.read_text()

    assert status == 1, output
    assert "SIGTERM again: stopping at once" in output
    assert "error: stopped at once on a second SIGTERM" in output
    assert f"abandoned=['{topic_name}/0']" in output
    assert not (tmp_path / "finished").exists()
    assert await committed_offsets(primary, env["SLOW_APP_GROUP"]) == {}


async def test_an_embedded_stop_gives_up_on_a_stubborn_handler_names_it_and_leaves_the_group(
    primary: str, topic_name: str
) -> None:
    # A session longer than the successor below waits: only leaving the group frees the partition.
    kafka = {"bootstrap_servers": primary, "session_timeout_ms": 60_000}
    app = App("embedded", kafka=kafka, group_id=topic_name, shutdown_timeout=1)
    events = Events(app)
    started, released = anyio.Event(), anyio.Event()

    @app.route(topic_name)
    async def stubborn(messages: Messages[bytes]) -> None:
        started.set()
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # the point: it will not be stopped
                await anyio.sleep(0.1)

    await produce(primary, topic_name, b"never let go")
    await app.start()
    try:
        with within(30, "the handler to start"):
            await started.wait()
        with pytest.raises(ShutdownError) as caught:
            await app.stop()

        assert app.state == "stopped"
        assert caught.value.gave_up
        [handler] = caught.value.handlers
        assert handler.startswith(
            f"{topic_name}/0 (handler {__name__}:{stubborn.__qualname__}, from offset 0, for "
        )
        [report] = events.named("error.occurred", type="shutdown.timeout")
        assert report["error"] is caught.value is app.failure
        assert report["handlers"] == [handler]
        await the_next_member_gets(primary, topic_name)
    finally:
        released.set()  # so that the test's event loop can close: the task ends after all
        await eventually(lambda: events.count("listener.stopped") == 1, what="the stubborn listener to end")


async def the_next_member_gets(primary: str, topic: str) -> None:
    """Another member of the group is handed the topic's uncommitted message (well before the
    60 s session of the member that held it would have expired)."""
    successor = App("successor", kafka={"bootstrap_servers": primary}, group_id=topic)
    took_over = anyio.Event()

    @successor.route(topic)
    async def take_over(messages: Messages[bytes]) -> None:
        took_over.set()

    async with successor.running():
        with within(30, "the next member to be handed the uncommitted message"):
            await took_over.wait()
