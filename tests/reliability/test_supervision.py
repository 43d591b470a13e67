"""The Supervisor keeps every listener going, and one cluster's trouble never stalls another's."""

from __future__ import annotations

import uuid

import pytest

from aiostream_kafka import App, Backoff, Consumer, Messages
from tests.helpers import Events, eventually
from tests.kafka_clusters import KafkaClusters

QUICK_RESTARTS = Backoff(initial=0.1, maximum=0.4, jitter=0)


async def test_a_listener_on_an_unreachable_cluster_restarts_with_backoff_while_others_flow(
    primary: str, topic_name: str
) -> None:
    app = App(
        "unreachable",
        kafka={"bootstrap_servers": primary},
        clusters={"nowhere": {"bootstrap_servers": "127.0.0.1:1", "request_timeout_ms": 1000}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        restart_backoff=QUICK_RESTARTS,
    )
    events = Events(app)
    handled: list[bytes | None] = []

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        handled.extend(m.value for m in messages)

    @app.route(topic_name, cluster="nowhere")
    async def on_nowhere(messages: Messages[bytes]) -> None:
        raise AssertionError("nothing can arrive from a cluster that does not exist")

    async with app.running():
        for n in range(3):
            await app.producer.produce(topic_name, f"{n}")
        await eventually(lambda: len(handled) == 3, what="the primary's messages")
        await eventually(lambda: events.count("listener.crashed", cluster="nowhere") >= 4, what="4 crashes")

    crashes = events.named("listener.crashed", cluster="nowhere")
    assert [e["restart_in"] for e in crashes[:4]] == [0.1, 0.2, 0.4, 0.4]
    assert events.count("listener.restarted", cluster="nowhere") >= 3
    assert events.count("error.occurred", cluster="nowhere", type="producer.connect") == 1
    assert events.count("listener.crashed", cluster="primary") == 0


async def test_a_listener_whose_hook_crashes_is_restarted_and_carries_on(
    primary: str, topic_name: str
) -> None:
    app = App(
        "crashy",
        kafka={"bootstrap_servers": primary},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        restart_backoff=QUICK_RESTARTS,
    )
    events = Events(app)
    starts: list[int] = []
    handled: list[int] = []

    class CrashesOnFirstStart(Consumer):
        async def on_start(self) -> None:
            starts.append(len(starts) + 1)
            if len(starts) == 1:
                raise RuntimeError("a cold cache")

        async def consume(self, messages: Messages[bytes]) -> None:
            handled.extend(m.offset for m in messages)

    app.routes.topic(topic_name, consumer=CrashesOnFirstStart)
    async with app.running():
        await app.producer.produce(topic_name, b"x")
        await eventually(lambda: handled == [0], what="the message after the restart")

    assert starts == [1, 2]
    [crash] = events.named("listener.crashed")
    assert str(crash["error"]) == "a cold cache"


@pytest.mark.slow
async def test_stopping_the_secondary_does_not_stop_consumption_on_the_primary(
    kafka: KafkaClusters, topic_name: str
) -> None:
    app = App(
        "outage",
        kafka={"bootstrap_servers": kafka.primary},
        clusters={"secondary": {"bootstrap_servers": kafka.secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        restart_backoff=QUICK_RESTARTS,
    )
    seen: dict[str, list[bytes | None]] = {"primary": [], "secondary": []}

    @app.route(topic_name)
    async def on_primary(messages: Messages[bytes]) -> None:
        seen["primary"].extend(m.value for m in messages)

    @app.route(topic_name, cluster="secondary")
    async def on_secondary(messages: Messages[bytes]) -> None:
        seen["secondary"].extend(m.value for m in messages)

    async with app.running():
        await app.producer.produce(topic_name, b"p1")
        await app.producers["secondary"].produce(topic_name, b"s1")
        await eventually(lambda: seen == {"primary": [b"p1"], "secondary": [b"s1"]}, what="both clusters")

        kafka.stop("secondary")
        try:
            for n in range(2, 5):
                await app.producer.produce(topic_name, f"p{n}")
            await eventually(lambda: len(seen["primary"]) == 4, what="the primary during the outage")
        finally:
            kafka.start("secondary")

        await app.producers["secondary"].produce(topic_name, b"s2")
        await eventually(lambda: b"s2" in seen["secondary"], within=60, what="the secondary after it is back")

    assert seen["primary"] == [b"p1", b"p2", b"p3", b"p4"]
