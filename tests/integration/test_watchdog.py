"""The loop watchdog on real Kafka: a handler that blocks the event loop is named, with how long.

A blocked loop stops heartbeats and commits for the whole process; without this, all the
logs show is the rebalance and the commit failures that follow.
"""

from __future__ import annotations

import logging
import time

import pytest

from aiostream_kafka import App, Messages
from tests.helpers import Events, eventually, produce


async def test_a_handler_that_blocks_the_loop_is_named_with_its_route_and_how_long(
    primary: str, topic_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App("watchdog", kafka={"bootstrap_servers": primary}, group_id=topic_name)
    events = Events(app)

    @app.route(topic_name)
    async def blocking(messages: Messages[bytes]) -> None:
        time.sleep(2)  # noqa: ASYNC251 - the point: nothing else in the process runs meanwhile

    await produce(primary, topic_name, b"one")
    with caplog.at_level(logging.WARNING, logger="aiostream_kafka"):
        async with app.running():
            await eventually(lambda: events.count("loop.blocked") >= 1, what="the block to be reported")

    [blocked] = [event for event in events.named("loop.blocked") if event["handler"] is not None]
    assert blocked["cluster"] == "primary"
    assert (blocked["topic"], blocked["partition"], blocked["first_offset"]) == (topic_name, 0, 0)
    assert blocked["handler"] == f"{blocking.__module__}:{blocking.__qualname__}"  # the route's handler_name
    assert blocked["handler"].endswith("<locals>.blocking")
    assert blocked["duration"] >= 1.5
    assert blocked["where"].startswith(f"{__file__}:")
    assert blocked["where"].endswith(" in blocking")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loop.blocked")]
    assert f"topic={topic_name} partition=0" in line
