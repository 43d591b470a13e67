"""How many records one poll may hand over: a route's max_poll_records, else max_messages x
concurrency, shared among the listeners of one process."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aiostream_kafka import App, ConfigError, Messages
from aiostream_kafka.config import Cluster
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.testing.clients import MemoryClients
from aiostream_kafka.testing.clock import VirtualClock
from aiostream_kafka.testing.memory import MemoryCluster
from tests.helpers import within


class PollRecordingClients(MemoryClients):
    """In-memory clients whose consumers remember the ``max_records`` of their polls."""

    def __init__(self, expected_consumers: int) -> None:
        super().__init__({"primary": MemoryCluster("primary")}, VirtualClock())
        self.polls: dict[str, int] = {}  # first topic subscribed -> max_records of its polls
        self.expected = expected_consumers
        self.polled = anyio.Event()

    def consumer(self, cluster: Cluster, **settings: Any) -> ConsumerClient:
        consumer = super().consumer(cluster, **settings)
        subscribe, getmany = consumer.subscribe, consumer.getmany

        def subscribing(topics: list[str], listener: Any) -> None:
            name = topics[0]

            async def polling(*partitions: Any, timeout_ms: int, max_records: int | None) -> Any:
                self.polls[name] = max_records or 0
                if len(self.polls) == self.expected:
                    self.polled.set()
                return await getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)

            consumer.getmany = polling  # type: ignore[method-assign]
            subscribe(topics, listener)

        consumer.subscribe = subscribing  # type: ignore[method-assign]
        return consumer


async def polls_of(app: App, listeners: int) -> dict[str, int]:
    clients = PollRecordingClients(listeners)
    app.clients = clients
    async with app.running():
        with within(30, f"{listeners} listener(s) to poll"):
            await clients.polled.wait()
    return clients.polls


async def noop(messages: Messages[bytes]) -> None:
    return None


def shop(**options: Any) -> App:
    return App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False, **options)


async def test_a_listener_alone_polls_max_messages_times_concurrency() -> None:
    app = shop(concurrency=4)
    app.routes.topic("orders", handler=noop, max_messages=50)

    assert await polls_of(app, 1) == {"orders": 200}


async def test_listeners_of_one_process_share_the_poll_size_so_none_starves_the_others() -> None:
    app = shop(concurrency=4)
    app.routes.topic("orders", handler=noop, max_messages=50)
    app.routes.topic("clicks", handler=noop, max_messages=50, subscription_group="clicks")

    assert await polls_of(app, 2) == {"orders": 100, "clicks": 100}


async def test_a_poll_is_never_smaller_than_one_batch() -> None:
    app = shop(concurrency=2)
    for n in range(3):
        app.routes.topic(f"t{n}", handler=noop, max_messages=30, subscription_group=f"g{n}")

    assert await polls_of(app, 3) == {"t0": 30, "t1": 30, "t2": 30}


async def test_a_routes_max_poll_records_is_its_poll_size_and_splits_its_subscription_group() -> None:
    app = shop(concurrency=4)
    app.routes.topic("orders", handler=noop, max_messages=50)
    app.routes.topic("reports", handler=noop, max_messages=50, max_poll_records=75)

    assert len(app.topology.subscription_groups) == 2
    assert await polls_of(app, 2) == {"orders": 100, "reports": 75}


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "100"])
def test_max_poll_records_must_be_a_positive_integer(value: object) -> None:
    app = shop()
    with pytest.raises(ConfigError, match="route for topic 'orders': max_poll_records must be a positive"):
        app.routes.topic("orders", handler=noop, max_poll_records=value)  # type: ignore[arg-type]
