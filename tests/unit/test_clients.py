"""Every Kafka client is made by one factory, ``KafkaClients``: aiokafka's classes, connected
to their cluster as the cluster says (its servers, its TLS context, its SASL login)."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from aiostream_kafka import App
from aiostream_kafka.config import Cluster, KafkaSettings
from aiostream_kafka.runtime.clients import KafkaClients

KINDS = {
    "consumer": AIOKafkaConsumer,  # the Listener's, a member of its group
    "producer": AIOKafkaProducer,
    "reader": AIOKafkaConsumer,  # the Admin's and the Web UI's, assigned partitions by hand
    "admin": AIOKafkaAdminClient,
}


def secure(context: ssl.SSLContext) -> Cluster:
    settings = {
        "bootstrap_servers": "broker-1:9093,broker-2:9093",
        "security_protocol": "SASL_SSL",
        "ssl_context": context,
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "shop",
        "sasl_plain_password": "s3cret",
    }
    return Cluster("secure", KafkaSettings.parse(settings, where="test"))


def connection_of(client: Any) -> Any:
    """aiokafka's connection settings, kept by the client's inner ``AIOKafkaClient``."""
    return client.client if isinstance(client, AIOKafkaProducer) else client._client


async def close(client: Any) -> None:
    await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_each_kind_of_client_is_aiokafkas_connected_as_its_cluster_says(kind: str) -> None:
    context = ssl.create_default_context()
    client = getattr(KafkaClients(), kind)(secure(context), client_id="shop-admin")
    try:
        assert type(client) is KINDS[kind]
        connection = connection_of(client)
        assert connection._bootstrap_servers == ["broker-1:9093", "broker-2:9093"]
        assert connection._security_protocol == "SASL_SSL"
        assert connection._ssl_context is context
        assert (connection._sasl_plain_username, connection._sasl_plain_password) == ("shop", "s3cret")
        assert connection._client_id == "shop-admin"
    finally:
        await close(client)


async def test_a_client_connects_only_where_its_cluster_says_whatever_it_is_asked() -> None:
    context = ssl.create_default_context()
    client = KafkaClients().reader(
        secure(context), bootstrap_servers="elsewhere:9092", security_protocol="PLAINTEXT", ssl_context=None
    )
    try:
        connection = connection_of(client)
        assert connection._bootstrap_servers == ["broker-1:9093", "broker-2:9093"]
        assert (connection._security_protocol, connection._ssl_context) == ("SASL_SSL", context)
    finally:
        await close(client)


def test_an_apps_admin_makes_its_clients_with_the_apps_clients() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)

    assert type(app.clients) is KafkaClients
    assert app.admin.clients is app.clients
    assert app.admin.cluster("primary").clients is app.clients
