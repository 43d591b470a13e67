"""An app whose handler holds its batch until the test lets go (it creates the ``release``
marker), for the shutdown tests: it runs in a subprocess under the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from aiostream_kafka import App, Messages

MARKERS = Path(os.environ["SLOW_APP_MARKERS"])

app = App(
    "slow-app",
    kafka={"bootstrap_servers": os.environ["SLOW_APP_BOOTSTRAP"]},
    group_id=os.environ["SLOW_APP_GROUP"],
    shutdown_timeout=float(os.environ.get("SLOW_APP_SHUTDOWN_TIMEOUT", "60")),
)


@app.route(os.environ["SLOW_APP_TOPIC"])
async def slow(messages: Messages[bytes]) -> None:
    (MARKERS / "started").write_text(str(messages.first_offset))
    while not (MARKERS / "release").exists():  # noqa: ASYNC110 - another process says when, by a file
        await anyio.sleep(0.05)
    (MARKERS / "finished").write_text(str(messages.last_offset))
