"""What a listener asks aiokafka for when it makes its consumer."""

from __future__ import annotations

from typing import Any

import anyio

from aiostream_kafka import App, Messages
from aiostream_kafka.config import Cluster
from aiostream_kafka.runtime.clients import ConsumerClient
from aiostream_kafka.testing.clients import MemoryClients
from aiostream_kafka.testing.clock import VirtualClock
from aiostream_kafka.testing.memory import MemoryCluster
from tests.helpers import within


class RecordingClients(MemoryClients):
    """In-memory clients that remember the settings each consumer was made with."""

    def __init__(self) -> None:
        super().__init__({"primary": MemoryCluster("primary")}, VirtualClock())
        self.asked: list[dict[str, Any]] = []
        self.made = anyio.Event()

    def consumer(self, cluster: Cluster, **settings: Any) -> ConsumerClient:
        self.asked.append(settings)
        self.made.set()
        return super().consumer(cluster, **settings)


async def settings_of_consumer(app: App) -> dict[str, Any]:
    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        return None

    clients = RecordingClients()
    app.clients = clients
    async with app.running():
        with within(30, "the listener to make its consumer"):
            await clients.made.wait()
    return clients.asked[0]


async def test_idle_consumers_fetch_once_a_second_and_their_fetch_routine_sleeps_as_long() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)

    settings = await settings_of_consumer(app)

    assert settings["fetch_max_wait_ms"] == 1000
    assert settings["consumer_timeout_ms"] == 1000


async def test_the_clusters_own_settings_win_over_the_frameworks_defaults() -> None:
    app = App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:1", "fetch.wait.max.ms": 250, "consumer_timeout_ms": 100},
        log_events=False,
    )

    settings = await settings_of_consumer(app)

    assert settings["fetch_max_wait_ms"] == 250
    assert settings["consumer_timeout_ms"] == 100


async def test_the_framework_still_owns_committing() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)

    settings = await settings_of_consumer(app)

    assert settings["enable_auto_commit"] is False
    assert settings["group_id"] == "shop"
