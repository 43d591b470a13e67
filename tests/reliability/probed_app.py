"""The app ``run --processes --health`` runs in tests/reliability/test_health.py: one topic on
each cluster, handlers that do nothing (the probes and the metrics are what is looked at)."""

from __future__ import annotations

import os

from aiostream_kafka import App, Messages

app = App(
    "probed",
    kafka={"bootstrap_servers": os.environ["PROBED_PRIMARY"]},
    clusters={"secondary": {"bootstrap_servers": os.environ["PROBED_SECONDARY"]}},
    group_id=os.environ["PROBED_GROUP"],
    statistics_interval=1.0,
)


@app.route(os.environ["PROBED_TOPIC"])
async def on_primary(messages: Messages[bytes]) -> None:
    pass


@app.route(os.environ["PROBED_TOPIC"], cluster="secondary")
async def on_secondary(messages: Messages[bytes]) -> None:
    pass
