"""The two local clusters are real Kafka and independent of each other."""

from __future__ import annotations

import re

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.helpers import produce, read_all
from tests.kafka_clusters import KafkaClusters


async def test_a_topic_created_on_the_secondary_is_absent_on_the_primary(
    primary: str, secondary: str, topic_name: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=secondary)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])
        await produce(secondary, topic_name, b"only on the secondary")
        assert topic_name in await admin.list_topics()
    finally:
        await admin.close()

    primary_admin = AIOKafkaAdminClient(bootstrap_servers=primary)
    await primary_admin.start()
    try:
        assert topic_name not in await primary_admin.list_topics()
    finally:
        await primary_admin.close()


async def test_each_cluster_reads_back_only_what_was_written_to_it(
    primary: str, secondary: str, topic_name: str
) -> None:
    await produce(primary, topic_name, b"to the primary")
    await produce(secondary, topic_name, b"to the secondary")

    assert await read_all(primary, topic_name) == [b"to the primary"]
    assert await read_all(secondary, topic_name) == [b"to the secondary"]


async def test_the_clusters_have_different_ids(primary: str, secondary: str) -> None:
    ids = []
    for bootstrap in (primary, secondary):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            ids.append((await admin.describe_cluster())["cluster_id"])
        finally:
            await admin.close()
    assert ids[0] != ids[1]


def test_up_is_idempotent(kafka: KafkaClusters) -> None:
    before = kafka.launcher("status").stdout
    result = kafka.launcher("up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == 2
    assert kafka.launcher("status").stdout == before


@pytest.mark.parametrize("name", ["primary", "secondary"])
def test_status_reports_each_cluster_ready(kafka: KafkaClusters, name: str) -> None:
    status = kafka.launcher("status", name)
    assert status.returncode == 0
    assert re.search(rf"^{name}\s+{re.escape(kafka.bootstrap(name))}\s+ready", status.stdout, re.M)
