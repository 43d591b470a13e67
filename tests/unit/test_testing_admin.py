"""Under ``app.testing()``, ``app.admin`` and the Web UI's board answer from the in-memory
clusters, through the same Admin and board code as on Kafka; what memory cannot answer
honestly raises ``NotModelledError`` saying what to do instead."""

from __future__ import annotations

import anyio
import pytest
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from aiostream_kafka import App, DeadLetterQueue, Messages
from aiostream_kafka.admin import GroupActiveError, PartitionLag, TopicDescription, TopicSpec
from aiostream_kafka.admin.check import CheckError
from aiostream_kafka.runtime.clients import KafkaClients
from aiostream_kafka.testing import NotModelledError
from aiostream_kafka.testing.clients import MemoryClients
from aiostream_kafka.web.board import StatusBoard
from tests.helpers import within


def shop() -> App:
    """Two clusters nobody can reach: the harness must never try."""
    app = App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:1"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:2"}},
        log_events=False,
    )

    @app.route("orders", group_id="billing")
    async def on_orders(messages: Messages[bytes]) -> None:
        return None

    return app


# --- topics ----------------------------------------------------------------------------------


async def test_topics_are_created_listed_described_and_deleted_in_memory() -> None:
    app = shop()
    async with app.testing() as t:
        await app.admin.create_topics([TopicSpec("invoices", partitions=3, replication_factor=3)])

        assert await app.admin.list_topics() == ["invoices", "orders"]
        assert await app.admin.describe_topics(["invoices", "missing"]) == {
            "invoices": TopicDescription("invoices", partitions=3, replication_factor=3)
        }
        assert len(t.clusters["primary"].logs["invoices"]) == 3
        assert "invoices" not in t.clusters["analytics"].logs

        await app.admin.delete_topics(["invoices"])

        assert await app.admin.list_topics() == ["orders"]


async def test_declared_topics_are_there_as_declared() -> None:
    app = shop()
    app.topics.declare("payments", cluster="analytics", partitions=6, replication_factor=3)

    async with app.testing():
        described = await app.admin.cluster("analytics").describe_topics(["payments"])

    assert described == {"payments": TopicDescription("payments", partitions=6, replication_factor=3)}


async def test_the_in_memory_cluster_refuses_what_kafka_refuses_with_kafkas_errors() -> None:
    app = shop()
    async with app.testing():
        with pytest.raises(TopicAlreadyExistsError, match="cannot create topic 'orders'"):
            await app.admin.create_topics([TopicSpec("orders")])
        with pytest.raises(UnknownTopicOrPartitionError, match="cannot delete topic 'missing'"):
            await app.admin.delete_topics(["missing"])
        with pytest.raises(Exception, match="cannot create topic 'no/slash'"):
            await app.admin.create_topics([TopicSpec("no/slash")])
        with pytest.raises(Exception, match="Replication factor must be larger than 0"):
            await app.admin.create_topics([TopicSpec("unreplicated", replication_factor=0)])


async def test_partitions_grow_and_the_grown_ones_take_messages() -> None:
    app = shop()
    async with app.testing() as t:
        await app.admin.create_topics([TopicSpec("invoices", partitions=2)])
        await app.admin.add_partitions("invoices", 4)

        assert (await app.admin.describe_topics(["invoices"]))["invoices"].partitions == 4
        await app.producer.produce("invoices", b"late", partition=3)
        assert [m.partition for m in t.produced("invoices")] == [3]
        with pytest.raises(ValueError, match="has 4 partitions"):
            await app.admin.add_partitions("invoices", 2)
        with pytest.raises(UnknownTopicOrPartitionError, match="'missing' does not exist"):
            await app.admin.add_partitions("missing", 2)


async def test_deleting_a_topic_the_app_consumes_is_not_modelled() -> None:
    app = shop()
    async with app.testing():
        with pytest.raises(NotModelledError, match="deleting topic 'orders' while the app consumes it"):
            await app.admin.delete_topics(["orders"])


async def test_the_check_looks_at_the_in_memory_clusters() -> None:
    app = shop()

    @app.route("payments", dead_letter_queue=DeadLetterQueue("payments.dlq"))
    async def on_payments(messages: Messages[bytes]) -> None:
        return None

    async with app.testing():
        with pytest.raises(CheckError) as refused:
            await app.check()

    assert refused.value.problems == [
        "the dead-letter queue of route for topic 'payments': topic 'payments.dlq' does not exist "
        "on cluster 'primary' (127.0.0.1:1); declare it and run `topics migrate`"
    ]


# --- consumer groups -------------------------------------------------------------------------


async def test_the_apps_group_is_stable_with_its_consumer_and_its_lag_is_what_it_did_not_commit() -> None:
    app = shop()
    async with app.testing() as t:
        await t.feed("orders", [b"a", b"b"])
        await app.producer.produce("orders", b"not consumed yet")  # no drain()

        assert await app.admin.consumer_groups() == ["billing"]
        group = await app.admin.consumer_group("billing")

    assert (group.state, group.members) == ("Stable", 1)
    assert group.partitions == (PartitionLag("orders", 0, committed=2, end=3),)
    assert group.lag == 1


async def test_a_group_with_only_offsets_is_empty_and_one_unknown_is_dead() -> None:
    app = shop()
    async with app.testing() as t:
        await t.feed("orders", [b"a", b"b", b"c"])
        assert await app.admin.reset_offsets("audit", "orders", 1) == {0: 1}

        audit = await app.admin.consumer_group("audit")
        unknown = await app.admin.consumer_group("nobody")

    assert (audit.state, audit.members, audit.lag) == ("Empty", 0, 2)
    assert (unknown.state, unknown.members, unknown.partitions) == ("Dead", 0, ())


async def test_offsets_of_the_running_group_are_not_reset() -> None:
    app = shop()
    async with app.testing() as t:
        await t.feed("orders", [b"a"])
        with pytest.raises(GroupActiveError, match="'billing' on cluster 'primary' is Stable with 1 member"):
            await app.admin.reset_offsets("billing", "orders", "earliest")

        assert t.committed("orders") == 1


# --- reading ---------------------------------------------------------------------------------


async def test_messages_are_read_from_memory_without_a_group() -> None:
    app = shop()
    async with app.testing() as t:
        await t.feed("orders", [b"a", b"b", b"c"], key="k")

        assert await app.admin.offsets("orders") == {0: (0, 3)}
        read = await app.admin.read("orders", start=1, count=5)
        assert [(m.offset, m.value, m.key, m.cluster) for m in read] == [
            (1, b"b", b"k", "primary"),
            (2, b"c", b"k", "primary"),
        ]
        assert await app.admin.consumer_groups() == ["billing"]  # reading joined no group


# --- what memory cannot answer ---------------------------------------------------------------


async def test_brokers_and_topic_configs_are_not_modelled_and_the_error_says_so() -> None:
    app = shop()
    async with app.testing():
        with pytest.raises(
            NotModelledError, match=r"cluster_info\(\) is not modelled .* 'primary'; .* real Kafka"
        ):
            await app.admin.cluster_info()
        with pytest.raises(NotModelledError, match="describing topic configs is not modelled"):
            await app.admin.describe_config("orders")
        with pytest.raises(NotModelledError, match="describing topic configs"):  # alter reads them first
            await app.admin.alter_config("orders", {"retention.ms": "1000"})


# --- each test's own admin -------------------------------------------------------------------


async def test_the_admin_is_of_memory_during_the_test_and_the_apps_own_before_and_after() -> None:
    app = shop()
    before = app.admin

    async with app.testing():
        assert isinstance(app.admin.clients, MemoryClients)
        assert app.admin is not before

    assert app.admin is before
    assert type(app.admin.clients) is KafkaClients


async def test_each_test_starts_from_empty_clusters_admin_included() -> None:
    app = shop()
    async with app.testing():
        await app.admin.create_topics([TopicSpec("invoices")])
    async with app.testing():
        assert await app.admin.list_topics() == ["orders"]


# --- the Web UI's board ----------------------------------------------------------------------


class WatchedBoard(StatusBoard):
    """A board that says when it has read a report."""

    def __init__(self, app: App) -> None:
        super().__init__(app, health_every=3600)
        self.reported = anyio.Event()
        self.checked = anyio.Event()

    def _take(self, is_report: bool, value: bytes | None) -> None:
        super()._take(is_report, value)
        if self.processes:
            self.reported.set()

    async def _check_cluster(self, name: str) -> None:
        await super()._check_cluster(name)
        if len(self.health) == len(self._app.topology.clusters):
            self.checked.set()


async def test_the_web_uis_board_reads_the_apps_reports_from_memory() -> None:
    app = shop()
    app.web.enable(interval=60)
    board = WatchedBoard(app)

    async with app.testing(), anyio.create_task_group() as tasks:
        tasks.start_soon(board.run)
        with within(30, "the board to read a report and check every cluster"):
            await board.reported.wait()
            await board.checked.wait()
        tasks.cancel_scope.cancel()

    [process] = board.live()
    assert process.app == "shop"
    assert {listener.group for listener in process.listeners} == {"billing"}
    assert board.reading == "reading aiostream_kafka.reports and aiostream_kafka.errors on cluster 'primary'"
    assert not board.health["primary"].ok
    assert "cluster_info() is not modelled" in board.health["primary"].detail
