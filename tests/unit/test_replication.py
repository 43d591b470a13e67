"""Disaster recovery without a broker: MirrorMaker's records decoded, its policies' topic names,
replicas declared, and an app failed over running its routes, DLQs and producers on the replica."""

from __future__ import annotations

import pytest

from aiostream_kafka import App, DeadLetterQueue, Messages
from aiostream_kafka.errors import ConfigError, UnknownClusterError
from aiostream_kafka.producing.renaming import RenamingProducer
from aiostream_kafka.replication import FAILED_OVER_ENV, Checkpoint, Heartbeat, OffsetSync, ReplicationPolicy
from aiostream_kafka.replication.failover import _upstream
from aiostream_kafka.replication.records import RecordFormatError

# Records as MirrorMaker 2 (connect-mirror 4.3.1) wrote them on the local clusters: group
# "dr-probe-g" committed 54 on partition 1 of "dr-probe", which the replica had synced only at 0.
CHECKPOINT_KEY = bytes.fromhex("000a64722d70726f62652d6700107072696d6172792e64722d70726f626500000001")
CHECKPOINT_VALUE = bytes.fromhex("0000000000000000003600000000000000010000")
HEARTBEAT_KEY = bytes.fromhex("00097365636f6e6461727900077072696d617279")
HEARTBEAT_VALUE = bytes.fromhex("0000000001a23201766f")


def test_a_checkpoint_names_group_replica_topic_partition_and_both_offsets() -> None:
    checkpoint = Checkpoint.decode(CHECKPOINT_KEY, CHECKPOINT_VALUE, timestamp_ms=1796135274050)
    assert checkpoint == Checkpoint("dr-probe-g", "primary.dr-probe", 1, 54, 1, "", 1796135274050)


def test_a_replicated_heartbeat_says_which_flow_and_when() -> None:
    assert Heartbeat.decode(HEARTBEAT_KEY, HEARTBEAT_VALUE) == Heartbeat(
        "secondary", "primary", 1796135286383
    )


def test_an_offset_sync_has_no_version_header() -> None:
    key = b"\x00\x06orders" + (2).to_bytes(4, "big")
    value = (120).to_bytes(8, "big") + (118).to_bytes(8, "big")
    assert OffsetSync.decode(key, value) == OffsetSync("orders", 2, 120, 118)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        (CHECKPOINT_KEY, None, "tombstone"),
        (CHECKPOINT_KEY[:-2], CHECKPOINT_VALUE, "end before"),
        (CHECKPOINT_KEY, b"\x00\x01" + CHECKPOINT_VALUE[2:], "version 1"),
        (CHECKPOINT_KEY, CHECKPOINT_VALUE + b"\x00", "left over"),
    ],
)
def test_a_record_that_is_no_checkpoint_is_refused_saying_why(
    key: bytes, value: bytes | None, says: str
) -> None:
    with pytest.raises(RecordFormatError, match=says):
        Checkpoint.decode(key, value, timestamp_ms=0)


def test_policies_name_replica_topics_as_mirrormaker_does() -> None:
    assert ReplicationPolicy().remote_topic("primary", "orders") == "primary.orders"
    assert ReplicationPolicy("default", "_").remote_topic("primary", "orders") == "primary_orders"
    assert ReplicationPolicy("identity").remote_topic("primary", "orders") == "orders"
    assert ReplicationPolicy().upstream_topic("primary", "primary.orders") == "orders"
    assert ReplicationPolicy.checkpoints_topic("primary") == "primary.checkpoints.internal"
    assert ReplicationPolicy.offset_syncs_topic("dr") == "mm2-offset-syncs.dr.internal"


def test_failback_resumes_the_source_where_nothing_read_on_the_replica_is_skipped() -> None:
    syncs = [OffsetSync("orders", 0, 0, 0), OffsetSync("orders", 0, 100, 90)]
    assert _upstream(syncs, 90) == 100  # exactly a synced record
    assert _upstream(syncs, 95) == 101  # past it: the next upstream record (maybe read again)
    assert _upstream([OffsetSync("orders", 0, 5, 5)], 3) is None  # before any sync: the start


def two_clusters() -> App:
    return App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:1"},
        clusters={
            "dr": {"bootstrap_servers": "127.0.0.1:2"},
            "analytics": {"bootstrap_servers": "127.0.0.1:3"},
        },
        log_events=False,
    )


def test_a_replica_is_declared_of_a_known_cluster_with_a_known_policy() -> None:
    app = two_clusters()
    with pytest.raises(UnknownClusterError, match=r"'dr2'.*did you mean 'dr'"):
        app.replicas.declare("dr2", of="primary")
    with pytest.raises(ConfigError, match="its own replica"):
        app.replicas.declare("dr", of="dr")
    with pytest.raises(ConfigError, match=r"policy='identiy'.*did you mean 'identity'"):
        app.replicas.declare("dr", of="primary", policy="identiy")  # type: ignore[arg-type]
    app.replicas.declare("dr", of="primary")
    with pytest.raises(ConfigError, match="already has a replica, 'dr'"):
        app.replicas.declare("analytics", of="primary")
    with pytest.raises(ConfigError, match="cluster 'analytics' has no replica declared"):
        app.replicas.fail_over("analytics")


def test_an_unknown_cluster_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    app = two_clusters()
    app.replicas.declare("dr", of="primary")
    monkeypatch.setenv(FAILED_OVER_ENV, "primray")
    with pytest.raises(ConfigError, match=f"{FAILED_OVER_ENV}='primray'.*did you mean 'primary'"):
        _ = app.topology


def shop_with_a_replica() -> App:
    app = two_clusters()
    app.replicas.declare("dr", of="primary")

    @app.route("orders", dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=0))
    async def orders(messages: Messages[bytes]) -> None:
        await app.producer.produce("orders.seen", messages[0].value)

    @app.route(
        "clicks", cluster="analytics", dead_letter_queue=DeadLetterQueue("clicks.dlq", cluster="primary")
    )
    async def clicks(messages: Messages[bytes]) -> None:
        pass

    app.topics.declare("orders.seen")
    return app


def test_without_failover_nothing_moves() -> None:
    topology = shop_with_a_replica().topology
    assert {(t.cluster, t.name) for t in topology.topics} == {("primary", "orders"), ("analytics", "clicks")}
    assert topology.moved == {}


def test_failed_over_the_routes_dlqs_and_declared_topics_are_on_the_replica_under_its_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FAILED_OVER_ENV, "primary")
    topology = shop_with_a_replica().topology
    assert {(t.cluster, t.name) for t in topology.topics} == {
        ("dr", "primary.orders"),
        ("analytics", "clicks"),
    }
    queues = {t.name: (t.dead_letter_cluster, t.route.dead_letter_queue.topic) for t in topology.topics}  # type: ignore[union-attr]
    assert queues == {"primary.orders": ("dr", "primary.orders.dlq"), "clicks": ("dr", "primary.clicks.dlq")}
    assert {(d.cluster, d.name) for d in topology.declared} == {("dr", "primary.orders.seen")}
    # the name stays, for the code that uses it, and connects to the replica
    assert topology.clusters["primary"].settings == topology.clusters["dr"].settings
    assert topology.primary.name == "primary"


def test_the_identity_policy_keeps_topic_names() -> None:
    app = two_clusters()
    app.replicas.declare("dr", of="primary", policy="identity")
    app.replicas.fail_over("primary")

    @app.route("orders")
    async def orders(messages: Messages[bytes]) -> None:
        pass

    assert [(t.cluster, t.name) for t in app.topology.topics] == [("dr", "orders")]
    assert app.topology.moved["primary"].prefix == ""


def test_replicas_are_declared_before_the_topology_is_built() -> None:
    app = two_clusters()
    _ = app.topology
    with pytest.raises(ConfigError, match="already built"):
        app.replicas.declare("dr", of="primary")


async def test_a_failed_over_app_consumes_and_produces_on_the_replica() -> None:
    app = shop_with_a_replica()
    app.replicas.fail_over("primary")
    async with app.testing() as t:
        assert isinstance(app.producer, RenamingProducer)
        await t.feed("primary.orders", [b"o-1"])
        assert [m.value for m in t.produced("primary.orders.seen", cluster="dr")] == [b"o-1"]
        assert t.committed("primary.orders", cluster="dr") == 1


def test_the_web_uis_status_topics_keep_their_names_on_the_replica() -> None:
    app = shop_with_a_replica()
    app.web.enable()
    app.replicas.fail_over("primary")
    declared = {(d.cluster, d.name) for d in app.topology.declared}
    assert ("dr", app.web.reports_topic) in declared
    assert ("dr", app.web.errors_topic) in declared
    assert ("dr", "primary.orders.seen") in declared
