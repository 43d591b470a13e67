"""The Admin API on real Kafka: topics, configs, consumer groups, offsets and reading, per cluster."""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from aiostream_kafka import App, UnknownClusterError
from aiostream_kafka.admin import (
    Admin,
    AdminRegistry,
    ClusterUnreachableError,
    GroupActiveError,
    PartitionLag,
    TopicDescription,
    TopicSpec,
)
from aiostream_kafka.config import Cluster, KafkaSettings
from tests.helpers import committed_offsets, free_port, produce, swallow, tcp_server, within


def cluster(name: str, bootstrap: str) -> Cluster:
    return Cluster(name, KafkaSettings.parse({"bootstrap_servers": bootstrap}, where="test"))


def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def port_of(bootstrap: str) -> int:
    return int(bootstrap.rsplit(":", 1)[1])


@pytest.fixture
async def admin(primary: str) -> AsyncIterator[Admin]:
    """The primary cluster's Admin."""
    async with Admin(cluster("primary", primary)) as admin:
        yield admin


@pytest.fixture
async def secondary_admin(secondary: str) -> AsyncIterator[Admin]:
    async with Admin(cluster("secondary", secondary)) as admin:
        yield admin


async def produce_to(bootstrap: str, topic: str, partition: int, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


async def consume_and_commit(bootstrap: str, topic: str, group: str, count: int) -> None:
    """A member of ``group`` reads the first ``count`` messages of partition 0, commits them and leaves."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        read = 0
        with within(30, f"{count} messages of {topic}"):
            while read < count:
                batch = await consumer.getmany(timeout_ms=500, max_records=count - read)
                read += len(batch.get(partition, []))
        await consumer.commit({partition: count})
    finally:
        await consumer.stop()


async def name_in_a_metadata_request(bootstrap: str, topic: str) -> None:
    """Ask for ``topic``'s partitions as a producer does, until the broker has created it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.partitions_for(topic)
    finally:
        await producer.stop()


@asynccontextmanager
async def active_member(bootstrap: str, topic: str, group: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer subscribed in ``group`` that holds its partitions until the block ends."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        with within(30, f"a member of {group} to be assigned {topic}"):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
        yield consumer
    finally:
        await consumer.stop()


# --- topics ---------------------------------------------------------------------------------


async def test_a_topic_is_created_listed_described_and_deleted(admin: Admin, topic_name: str) -> None:
    await admin.create_topics([TopicSpec(topic_name, partitions=3)])

    assert topic_name in await admin.list_topics()
    assert await admin.describe_topics([topic_name, f"{topic_name}-missing"]) == {
        topic_name: TopicDescription(topic_name, partitions=3, replication_factor=1, internal=False)
    }

    await admin.delete_topics([topic_name])

    assert topic_name not in await admin.list_topics()
    assert await admin.describe_topics([topic_name]) == {}


async def test_creating_a_topic_that_exists_is_an_error_naming_it(admin: Admin, topic_name: str) -> None:
    await admin.create_topics([TopicSpec(topic_name)])

    with pytest.raises(TopicAlreadyExistsError, match=topic_name):
        await admin.create_topics([TopicSpec(topic_name)])


async def test_describing_a_missing_topic_does_not_create_it(
    admin: Admin, primary: str, topic_name: str
) -> None:
    """The local brokers auto-create topics on metadata requests that name them; describing must not."""
    assert await admin.describe_topics([topic_name]) == {}
    # A metadata request that names a topic, sent after: the broker creates that one, and has
    # dealt with the describe's request (one broker, one controller, in order) once it exists.
    named = f"{topic_name}-named"
    await name_in_a_metadata_request(primary, named)

    topics = await admin.list_topics()
    assert named in topics  # the check could fail: these brokers do auto-create
    assert topic_name not in topics


async def test_internal_topics_are_listed_only_when_asked_for(admin: Admin, topic_name: str) -> None:
    await admin.create_topics([TopicSpec(topic_name)])
    await admin.reset_offsets(group_id(), topic_name, "earliest")  # so __consumer_offsets exists

    visible = await admin.list_topics()
    everything = await admin.list_topics(internal=True)

    assert visible == sorted(visible)
    assert not [name for name in visible if name.startswith("__")]
    assert "__consumer_offsets" in everything
    assert set(visible) < set(everything)


async def test_a_topic_created_on_the_secondary_is_not_on_the_primary(
    admin: Admin, secondary_admin: Admin, topic_name: str
) -> None:
    await secondary_admin.create_topics([TopicSpec(topic_name)])

    assert topic_name in await secondary_admin.list_topics()
    assert topic_name not in await admin.list_topics()
    assert await admin.describe_topics([topic_name]) == {}


async def test_partitions_grow_but_never_shrink(admin: Admin, topic_name: str) -> None:
    await admin.create_topics([TopicSpec(topic_name, partitions=1)])

    await admin.add_partitions(topic_name, 3)

    assert (await admin.describe_topics([topic_name]))[topic_name].partitions == 3
    with pytest.raises(ValueError, match=rf"{topic_name}.*has 3 partitions"):
        await admin.add_partitions(topic_name, 2)
    with pytest.raises(ValueError, match=topic_name):
        await admin.add_partitions(topic_name, 3)
    assert (await admin.describe_topics([topic_name]))[topic_name].partitions == 3


async def test_adding_partitions_to_a_missing_topic_names_it(admin: Admin, topic_name: str) -> None:
    with pytest.raises(UnknownTopicOrPartitionError, match=rf"{topic_name}.*cluster 'primary'"):
        await admin.add_partitions(topic_name, 2)


# --- configs --------------------------------------------------------------------------------


async def test_altering_one_setting_keeps_the_others(admin: Admin, topic_name: str) -> None:
    await admin.create_topics(
        [TopicSpec(topic_name, settings={"cleanup.policy": "compact", "max.message.bytes": "200000"})]
    )
    before = await admin.describe_config(topic_name)
    assert before["cleanup.policy"] == "compact"
    assert before["max.message.bytes"] == "200000"
    assert before["retention.ms"] != "3600000"

    await admin.alter_config(topic_name, {"retention.ms": "3600000"})

    after = await admin.describe_config(topic_name)
    assert after["retention.ms"] == "3600000"
    assert after["cleanup.policy"] == "compact"
    assert after["max.message.bytes"] == "200000"

    await admin.alter_config(topic_name, {"cleanup.policy": "delete"})

    last = await admin.describe_config(topic_name)
    assert (last["cleanup.policy"], last["retention.ms"], last["max.message.bytes"]) == (
        "delete",
        "3600000",
        "200000",
    )


# --- the cluster ----------------------------------------------------------------------------


async def test_cluster_info_names_the_cluster_and_its_broker(
    admin: Admin, secondary_admin: Admin, primary: str
) -> None:
    info = await admin.cluster_info()

    assert info.cluster == "primary"
    assert info.cluster_id
    assert [broker.port for broker in info.brokers] == [port_of(primary)]
    assert info.controller_id in [broker.node_id for broker in info.brokers]
    assert (await secondary_admin.cluster_info()).cluster_id != info.cluster_id


async def test_a_cluster_nothing_listens_for_is_named_with_its_server_and_refused_not_timed_out() -> None:
    address = f"127.0.0.1:{free_port()}"
    admin = Admin(cluster("analytics", address), timeout=2)

    refused = (
        f"cannot connect to cluster 'analytics' ({address}, PLAINTEXT): connection refused at {address}: "
    )

    with pytest.raises(ClusterUnreachableError) as listing:
        await admin.list_topics()  # through the admin client
    with pytest.raises(ClusterUnreachableError) as reading:
        await admin.read("orders")  # through a consumer

    for raised in (listing, reading):
        assert str(raised.value).startswith(f"{refused}nothing listens there")
    await admin.close()


async def test_a_cluster_that_never_answers_fails_once_the_timeout_has_passed() -> None:
    async with tcp_server(swallow) as address:
        admin = Admin(cluster("hanging", address), timeout=2)
        started = time.monotonic()

        # Far below aiokafka's own limits (a 40 s request timeout, bootstrap retries): only
        # the Admin's timeout ends this in time.
        with (
            within(20, "the Admin to give up on a cluster that never answers"),
            pytest.raises(
                ClusterUnreachableError, match=rf"cluster 'hanging' \({address}\) did not answer within 2.0s"
            ),
        ):
            await admin.cluster_info()

        assert time.monotonic() - started >= 2  # it waited its timeout, not less
        await admin.close()


# --- consumer groups ------------------------------------------------------------------------


async def test_consumer_group_lag_is_what_the_group_has_not_committed(
    admin: Admin, primary: str, topic_name: str
) -> None:
    group = group_id()
    await admin.create_topics([TopicSpec(topic_name, partitions=2)])
    await produce_to(primary, topic_name, 0, *(f"m{i}".encode() for i in range(10)))
    await consume_and_commit(primary, topic_name, group, 4)

    info = await admin.consumer_group(group)

    assert info.group_id == group
    assert (info.state, info.members) == ("Empty", 0)
    assert info.partitions == (
        PartitionLag(topic_name, 0, committed=4, end=10),
        PartitionLag(topic_name, 1, committed=None, end=0),  # never committed, and empty
    )
    assert info.lag == 6
    assert group in await admin.consumer_groups()


async def test_a_group_kafka_does_not_know_is_dead_and_empty(admin: Admin) -> None:
    info = await admin.consumer_group(group_id())

    assert (info.state, info.members, info.partitions, info.lag) == ("Dead", 0, (), 0)


@pytest.mark.parametrize(
    ("to", "expected"),
    [("earliest", 0), ("latest", 10), (7, 7), (99, 10)],
    ids=["earliest", "latest", "an-offset", "past-the-end-is-the-end"],
)
async def test_offsets_of_an_inactive_group_are_reset(
    admin: Admin, primary: str, topic_name: str, to: int | str, expected: int
) -> None:
    group = group_id()
    await admin.create_topics([TopicSpec(topic_name)])
    await produce(primary, topic_name, *(f"m{i}".encode() for i in range(10)))
    await consume_and_commit(primary, topic_name, group, 4)

    assert await admin.reset_offsets(group, topic_name, to) == {0: expected}

    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): expected}
    assert (await admin.consumer_group(group)).lag == 10 - expected


async def test_offsets_reset_to_a_time_start_at_the_first_message_since(
    admin: Admin, primary: str, topic_name: str
) -> None:
    group = group_id()
    await admin.create_topics([TopicSpec(topic_name)])
    old_ms = int(time.time() * 1000) - 60_000  # create times a second apart, within retention
    await produce(primary, topic_name, *(b"old" for _ in range(5)), timestamp_ms=old_ms)
    await produce(primary, topic_name, *(b"new" for _ in range(5)), timestamp_ms=old_ms + 1000)
    since = datetime.fromtimestamp((old_ms + 500) / 1000, timezone.utc)

    assert await admin.reset_offsets(group, topic_name, since) == {0: 5}
    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 5}

    # Nothing that late: the end.
    assert await admin.reset_offsets(group, topic_name, since + timedelta(days=1)) == {0: 10}


async def test_resetting_a_new_group_gives_it_offsets(admin: Admin, primary: str, topic_name: str) -> None:
    group = group_id()
    await admin.create_topics([TopicSpec(topic_name, partitions=2)])
    await produce_to(primary, topic_name, 1, b"a", b"b", b"c")

    assert await admin.reset_offsets(group, topic_name, "latest") == {0: 0, 1: 3}

    info = await admin.consumer_group(group)
    assert info.state == "Empty"
    assert [(p.partition, p.committed) for p in info.partitions] == [(0, 0), (1, 3)]


async def test_offsets_of_an_active_group_are_not_reset(admin: Admin, primary: str, topic_name: str) -> None:
    group = group_id()
    await admin.create_topics([TopicSpec(topic_name)])
    await produce(primary, topic_name, *(f"m{i}".encode() for i in range(10)))
    await consume_and_commit(primary, topic_name, group, 4)

    async with active_member(primary, topic_name, group):
        info = await admin.consumer_group(group)
        assert (info.state, info.members) == ("Stable", 1)
        with pytest.raises(GroupActiveError, match=rf"{group}.*Stable"):
            await admin.reset_offsets(group, topic_name, "earliest")
        assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 4}

    # Once its member has left, the group is Empty and the same reset goes through.
    assert await admin.reset_offsets(group, topic_name, "earliest") == {0: 0}


async def test_resetting_offsets_of_a_missing_topic_names_it(admin: Admin, topic_name: str) -> None:
    with pytest.raises(UnknownTopicOrPartitionError, match=topic_name):
        await admin.reset_offsets(group_id(), topic_name, "earliest")


# --- reading --------------------------------------------------------------------------------


async def test_read_returns_messages_from_an_offset_and_stops_at_the_end(
    admin: Admin, primary: str, topic_name: str
) -> None:
    await admin.create_topics([TopicSpec(topic_name)])
    await produce(primary, topic_name, *(f"m{i}".encode() for i in range(10)))

    middle = await admin.read(topic_name, start=3, count=4)
    assert [(m.offset, m.value) for m in middle] == [(3, b"m3"), (4, b"m4"), (5, b"m5"), (6, b"m6")]
    assert {(m.cluster, m.topic, m.partition) for m in middle} == {("primary", topic_name, 0)}

    # An Admin that would wait a long while for more messages, were it to read past the end.
    async with Admin(cluster("primary", primary), timeout=600) as patient:
        with within(60, "read() to stop at the partition's end"):
            tail = await patient.read(topic_name, start=8, count=100)
    assert [m.value for m in tail] == [b"m8", b"m9"]

    assert [m.value for m in await admin.read(topic_name, count=2)] == [b"m0", b"m1"]
    assert await admin.read(topic_name, start="latest") == []
    assert await admin.read(topic_name, start=10) == []


async def test_offsets_say_where_each_partition_starts_and_ends(
    secondary_admin: Admin, secondary: str, topic_name: str
) -> None:
    await secondary_admin.create_topics([TopicSpec(topic_name, partitions=2)])
    await produce_to(secondary, topic_name, 1, b"a")
    await produce_to(secondary, topic_name, 1, b"b")

    assert await secondary_admin.offsets(topic_name) == {0: (0, 0), 1: (0, 2)}
    with pytest.raises(
        UnknownTopicOrPartitionError, match=f"{topic_name}-missing' does not exist on cluster 'secondary'"
    ):
        await secondary_admin.offsets(topic_name + "-missing")


async def test_read_names_the_cluster_it_read_from(
    secondary_admin: Admin, secondary: str, topic_name: str
) -> None:
    await secondary_admin.create_topics([TopicSpec(topic_name, partitions=2)])
    await produce_to(secondary, topic_name, 1, b"over there")

    [message] = await secondary_admin.read(topic_name, partition=1)

    assert (message.cluster, message.partition, message.offset, message.value) == (
        "secondary",
        1,
        0,
        b"over there",
    )
    with pytest.raises(UnknownTopicOrPartitionError, match="no partition 2"):
        await secondary_admin.read(topic_name, partition=2)


# --- every cluster of an app ----------------------------------------------------------------


@pytest.fixture
async def registry(primary: str, secondary: str) -> AsyncIterator[AdminRegistry]:
    app = App(
        "admin-test",
        kafka={"bootstrap_servers": primary},
        clusters={"secondary": {"bootstrap_servers": secondary}},
    )
    async with AdminRegistry(app.topology, client_id="admin-test") as registry:
        yield registry


async def test_the_registry_administers_each_cluster_by_name(
    registry: AdminRegistry, primary: str, secondary: str, topic_name: str
) -> None:
    assert registry.cluster("secondary") is registry.cluster("secondary")
    assert registry.primary is registry.cluster("primary")

    await registry.cluster("secondary").create_topics([TopicSpec(topic_name)])

    assert topic_name in await registry.cluster("secondary").list_topics()
    assert topic_name not in await registry.list_topics()  # the registry's own methods are the primary's
    assert [b.port for b in (await registry.cluster("secondary").cluster_info()).brokers] == [
        port_of(secondary)
    ]
    assert [b.port for b in (await registry.cluster_info()).brokers] == [port_of(primary)]


async def test_the_registry_forwards_to_the_primary(registry: AdminRegistry, topic_name: str) -> None:
    await registry.create_topics([TopicSpec(topic_name, partitions=2)])
    await registry.add_partitions(topic_name, 3)
    await registry.alter_config(topic_name, {"retention.ms": "60000"})

    assert (await registry.primary.describe_topics([topic_name]))[topic_name].partitions == 3
    assert (await registry.primary.describe_config(topic_name))["retention.ms"] == "60000"
    assert await registry.read(topic_name) == []

    await registry.delete_topics([topic_name])
    assert topic_name not in await registry.primary.list_topics()


async def test_the_registry_is_usable_again_after_closing(registry: AdminRegistry) -> None:
    first = (await registry.cluster_info()).cluster_id
    await registry.close()

    assert (await registry.cluster_info()).cluster_id == first


def test_an_unknown_cluster_name_lists_the_known_ones(primary: str, secondary: str) -> None:
    app = App(
        "admin-test",
        kafka={"bootstrap_servers": primary},
        clusters={"secondary": {"bootstrap_servers": secondary}},
    )
    registry = AdminRegistry(app.topology, client_id="admin-test")

    with pytest.raises(UnknownClusterError, match=r"'analytics'.*primary, secondary"):
        registry.cluster("analytics")


def test_the_registry_offers_every_admin_method_with_the_same_signature() -> None:
    methods = [
        name
        for name, method in inspect.getmembers(Admin, inspect.iscoroutinefunction)
        if not name.startswith("_") and name != "close"
    ]

    assert len(methods) == 14
    for name in methods:
        assert inspect.signature(getattr(AdminRegistry, name)) == inspect.signature(getattr(Admin, name)), (
            name
        )
