"""An app whose handler ignores cancellation (it swallows ``CancelledError`` in a loop), for
the shutdown-limit tests: nothing but the process ending stops it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import anyio

from aiostream_kafka import App, Messages

MARKERS = Path(os.environ["STUBBORN_APP_MARKERS"])

app = App(
    "stubborn-app",
    kafka={"bootstrap_servers": os.environ["STUBBORN_APP_BOOTSTRAP"]},
    group_id=os.environ["STUBBORN_APP_GROUP"],
    shutdown_timeout=2,
)


@app.route(os.environ["STUBBORN_APP_TOPIC"])
async def stubborn(messages: Messages[bytes]) -> None:
    (MARKERS / "started").write_text(str(messages.first_offset))
    while True:
        with contextlib.suppress(asyncio.CancelledError):  # the point: a handler that will not be stopped
            await anyio.sleep(1)
