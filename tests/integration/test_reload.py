"""``run APP --reload``: a change to the app's code restarts it gracefully with the new code,
and code that does not even import is shown without ending the watcher, which waits for a fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from tests.helpers import create_topic, eventually, produce, wait_for_records, within

pytestmark = pytest.mark.slow

#: A generous guard for a restart on a loaded machine: a graceful stop, a new interpreter,
#: joining the group again.
RESTART = 120.0

APP = """
import os

from aiostream_kafka import App, Messages

app = App(
    "reload-test",
    kafka={{"bootstrap_servers": os.environ["RELOAD_APP_BOOTSTRAP"]}},
    group_id=os.environ["RELOAD_APP_GROUP"],
)


@app.route(os.environ["RELOAD_APP_TOPIC"])
async def handle(messages: Messages[bytes]) -> None:
    for message in messages:
        await app.producer.produce(os.environ["RELOAD_APP_OUTPUT"], b"{version}:" + message.payload)
"""


def write_app(package: Path, version: str) -> None:
    (package / "app.py").write_text(APP.format(version=version))


async def started(log: Path, times: int) -> None:
    """Until the log shows the app's ``times``-th start."""
    await eventually(
        lambda: log.read_text().count("app.started") >= times, within=RESTART, what=f"start number {times}"
    )


@pytest.mark.timeout(900)
async def test_a_change_restarts_the_app_with_the_new_code_and_a_broken_change_waits_for_a_fix(
    primary: str, topic_name: str, tmp_path: Path
) -> None:
    source, output = topic_name, f"{topic_name}-out"
    await create_topic(primary, source)
    await create_topic(primary, output)
    package = tmp_path / "reloadable"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_app(package, "v1")
    env = {
        **os.environ,
        "RELOAD_APP_BOOTSTRAP": primary,
        "RELOAD_APP_GROUP": f"g-{uuid.uuid4().hex[:8]}",
        "RELOAD_APP_TOPIC": source,
        "RELOAD_APP_OUTPUT": output,
    }
    log = tmp_path / "reload.log"
    with log.open("w") as out:
        watcher: Process = await anyio.open_process(
            [sys.executable, "-m", "aiostream_kafka", "run", "reloadable.app:app", "--reload"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await started(log, 1)
        await produce(primary, source, b"a")
        assert [r.value for r in await wait_for_records(primary, output, 1, within=RESTART)] == [b"v1:a"]

        write_app(package, "v2")  # the same size as v1: no stale bytecode may run instead
        await started(log, 2)
        await produce(primary, source, b"b")
        records = await wait_for_records(primary, output, 2, within=RESTART)
        assert [r.value for r in records] == [b"v1:a", b"v2:b"]

        (package / "app.py").write_text("def broken(:\n")
        await eventually(
            lambda: "the app exited with status 1; the next change restarts it" in log.read_text(),
            within=RESTART,
            what="the watcher to report the broken code",
        )
        assert "SyntaxError" in log.read_text()  # the child's traceback, shown by the watcher's output
        assert watcher.returncode is None  # the watcher waits for a fix
        await produce(primary, source, b"c")  # while no app runs

        write_app(package, "v3")
        await started(log, 3)
        records = await wait_for_records(primary, output, 3, within=RESTART)
        assert [r.value for r in records] == [b"v1:a", b"v2:b", b"v3:c"]
    finally:
        if watcher.returncode is None:
            watcher.send_signal(signal.SIGTERM)
        with within(RESTART, "the watcher to stop the app and exit"):
            status = await watcher.wait()
    text = log.read_text()
    assert status == 0, text
    assert text.count("app.stopped") == 3, text  # v1 and v2 for the changes, v3 at the end: all gracefully
    assert "abandoned=[]" in text.rsplit("app.stopped", 1)[1]
