"""On real brokers: a new topic and a new group start without a warning from aiokafka, and a
cluster that is not there is still reported loud and clear."""

from __future__ import annotations

import logging
import uuid

import pytest

from aiostream_kafka import App, Messages
from tests.helpers import Events, eventually, free_port


def aiokafka_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("aiokafka") and r.levelno >= logging.WARNING
    ]


async def test_a_new_topic_and_group_start_without_aiokafka_warnings(
    primary: str, topic_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App("quiet-start", kafka={"bootstrap_servers": primary}, group_id=f"g-{uuid.uuid4().hex[:8]}")
    seen: list[bytes] = []

    @app.route(topic_name)
    async def handle(messages: Messages[bytes]) -> None:
        seen.extend(messages.payloads())

    def not_found_yet() -> bool:
        return any(
            r.getMessage() == f"Topic {topic_name} not found in cluster metadata" for r in caplog.records
        )

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="aiokafka.cluster")  # where the demoted lines go
    async with app.running():
        # The consumer asks for a topic nobody has created: aiokafka says so (at ERROR, shown at DEBUG).
        await eventually(not_found_yet, within=60, what="aiokafka to find no such topic")
        await app.producer.produce(topic_name, b"first")  # the broker auto-creates it
        await eventually(lambda: seen == [b"first"], within=60, what="the first message consumed")

    assert aiokafka_warnings(caplog) == []


async def test_a_cluster_that_is_not_there_is_still_reported(caplog: pytest.LogCaptureFixture) -> None:
    away = f"127.0.0.1:{free_port()}"  # nothing listens there
    app = App("loud-failure", kafka={"bootstrap_servers": away}, group_id=f"g-{uuid.uuid4().hex[:8]}")
    events = Events(app)

    @app.route("t-anything")
    async def handle(messages: Messages[bytes]) -> None: ...

    caplog.set_level(logging.INFO)
    async with app.running():
        await eventually(
            lambda: events.count("cluster.unreachable") == 1, within=60, what="the outage noticed"
        )

    errors = [r for r in caplog.records if r.name.startswith("aiokafka") and r.levelno >= logging.ERROR]
    assert errors, "aiokafka's connection errors are shown"
    assert all(r.getMessage().startswith("[cluster 'primary']") for r in errors)
    [unreachable] = [r for r in caplog.records if getattr(r, "event", None) == "cluster.unreachable"]
    assert unreachable.levelno == logging.ERROR
