"""An app whose handler blocks its event loop (``time.sleep``) the first time any worker sees
a message, for the hung-worker test: the worker that takes over handles it normally."""

from __future__ import annotations

import os
import time
from pathlib import Path

from aiostream_kafka import App, Messages

MARKERS = Path(os.environ["HANG_APP_MARKERS"])

app = App(
    "hang-app",
    kafka={"bootstrap_servers": os.environ["HANG_APP_BOOTSTRAP"], "session_timeout_ms": 6000},
    group_id=os.environ["HANG_APP_GROUP"],
)


@app.route(os.environ["HANG_APP_TOPIC"])
async def handle(messages: Messages[bytes]) -> None:
    hung = MARKERS / "hung"
    if not hung.exists():
        hung.write_text(str(os.getpid()))
        time.sleep(60)  # noqa: ASYNC251 - the point: no heartbeat, no Kafka heartbeat, no SIGTERM
    (MARKERS / "handled").write_text(str(os.getpid()))
