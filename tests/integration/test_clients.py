"""On real Kafka every client an app uses is aiokafka's, made by ``app.clients``: the
listeners' consumers, the producers (the Web UI reporter's too), the Admin's admin client
and readers, and the Web UI board's reader."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from aiostream_kafka import App, Messages
from aiostream_kafka.admin import TopicSpec
from aiostream_kafka.config import Cluster
from aiostream_kafka.runtime.clients import (
    AdminClient,
    ConsumerClient,
    KafkaClients,
    ProducerClient,
    ReaderClient,
)
from aiostream_kafka.web.board import StatusBoard
from tests.helpers import create_topic, within


class RecordingClients(KafkaClients):
    """aiokafka's clients, each noted as (kind, cluster, client id, client) when made."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str, str, Any]] = []

    def _note(self, kind: str, cluster: Cluster, settings: dict[str, Any], client: Any) -> None:
        self.made.append((kind, cluster.name, settings.get("client_id", ""), client))

    def consumer(self, cluster: Cluster, **settings: Any) -> ConsumerClient:
        client = super().consumer(cluster, **settings)
        self._note("consumer", cluster, settings, client)
        return client

    def producer(self, cluster: Cluster, **settings: Any) -> ProducerClient:
        client = super().producer(cluster, **settings)
        self._note("producer", cluster, settings, client)
        return client

    def reader(self, cluster: Cluster, **settings: Any) -> ReaderClient:
        client = super().reader(cluster, **settings)
        self._note("reader", cluster, settings, client)
        return client

    def admin(self, cluster: Cluster, **settings: Any) -> AdminClient:
        client = super().admin(cluster, **settings)
        self._note("admin", cluster, settings, client)
        return client

    def kinds(self) -> set[tuple[str, str, str, type]]:
        return {(kind, cluster, client_id, type(client)) for kind, cluster, client_id, client in self.made}


async def test_the_admin_asks_the_apps_clients_for_aiokafkas(primary: str, topic_name: str) -> None:
    app = App("clients", kafka={"bootstrap_servers": primary}, log_events=False)
    clients = app.clients = RecordingClients()

    async with app.admin as admin:
        await admin.create_topics([TopicSpec(topic_name)])
        assert await admin.offsets(topic_name) == {0: (0, 0)}

    assert clients.kinds() == {
        ("admin", "primary", "clients-admin", AIOKafkaAdminClient),
        ("reader", "primary", "clients-admin", AIOKafkaConsumer),
    }


class WatchedBoard(StatusBoard):
    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.reported = anyio.Event()

    def _take(self, is_report: bool, value: bytes | None) -> None:
        super()._take(is_report, value)
        if self.processes:
            self.reported.set()


async def test_a_running_app_and_its_web_ui_ask_the_apps_clients_for_aiokafkas(primary: str) -> None:
    run = f"clients-{uuid.uuid4().hex[:8]}"
    await create_topic(primary, f"{run}.orders")
    await create_topic(primary, f"{run}.reports")
    app = App(run, kafka={"bootstrap_servers": primary}, log_events=False)
    app.web.enable(interval=0.5, reports_topic=f"{run}.reports", errors_topic=f"{run}.errors")

    @app.route(f"{run}.orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        return None

    clients = app.clients = RecordingClients()
    board = WatchedBoard(app)
    async with app.running(), anyio.create_task_group() as tasks:
        tasks.start_soon(board.run)
        with within(60, "the board to read a report"):
            await board.reported.wait()
        tasks.cancel_scope.cancel()
    await app.admin.close()  # the board's health checks

    assert {
        ("consumer", "primary", run, AIOKafkaConsumer),
        ("producer", "primary", run, AIOKafkaProducer),
        ("producer", "primary", f"{run}-web-reporter", AIOKafkaProducer),
        ("reader", "primary", f"{run}-web-ui", AIOKafkaConsumer),
    } <= clients.kinds()
