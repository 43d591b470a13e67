"""An app every worker fails to start (the parent, which only imports it, does not notice):
for the test where the parent gives up on workers that keep failing."""

from __future__ import annotations

import os

from aiostream_kafka import App, Backoff, Messages

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")
app = App("crash-app", kafka={"bootstrap_servers": PRIMARY}, restart_backoff=Backoff(0.05, 0.2))


@app.route("crash-app.never-consumed")  # something to run: `run` refuses an app with nothing
async def never(messages: Messages[bytes]) -> None:
    raise AssertionError("no worker gets this far")


if os.environ.get("AIOSTREAM_KAFKA_WORKER"):  # set in every worker by the parent
    raise RuntimeError("the vault that holds this worker's secrets is unreachable")
