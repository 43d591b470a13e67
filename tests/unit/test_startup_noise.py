"""aiokafka's startup lines are shown at DEBUG while they are what starting looks like, and
at their own level once they last too long; every other line passes untouched."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aiostream_kafka import Monitor
from aiostream_kafka.runtime.reachability import client_of
from aiostream_kafka.runtime.startup_noise import StartupNoise

CLUSTER_LOG = logging.getLogger("aiokafka.cluster")
COORDINATOR_LOG = logging.getLogger("aiokafka.consumer.group_coordinator")
CONNECTION_LOG = logging.getLogger("aiokafka.conn")
REQUEST_FAILED, NOT_AVAILABLE = (
    "Group Coordinator Request failed: %s",
    "[Error 15] GroupCoordinatorNotAvailableError",
)
STARTUP_NOTE = "(still so 0s after the first such line; 1 before this shown at DEBUG as normal startup)"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def monitor() -> Monitor:
    return Monitor()


@pytest.fixture
def noise(clock: Clock, monitor: Monitor) -> Iterator[StartupNoise]:
    noise = StartupNoise({"primary": {"orders"}}, grace=20.0, clock=clock)
    noise.install(monitor)
    yield noise
    noise.uninstall()


def shown(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """What a handler at INFO would print: (level, message)."""
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]


def test_a_topic_being_created_is_debug_until_the_grace_is_over(
    noise: StartupNoise, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with client_of("primary"):
        CLUSTER_LOG.error("Topic %s not found in cluster metadata", "orders")
        clock.now = 19.0
        CLUSTER_LOG.warning("Topic %s is not available during auto-create initialization", "orders")
        assert shown(caplog) == []

        clock.now = 21.0
        CLUSTER_LOG.error("Topic %s not found in cluster metadata", "orders")
        CLUSTER_LOG.error("Topic %s not found in cluster metadata", "orders")

    assert shown(caplog) == [
        (
            "ERROR",
            "Topic orders not found in cluster metadata (still so 21s after the first such line; "
            "2 before this shown at DEBUG as normal startup)",
        ),
        ("ERROR", "Topic orders not found in cluster metadata"),
    ]


def test_demoted_lines_are_there_for_whoever_logs_aiokafka_at_debug(
    noise: StartupNoise, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with client_of("primary"):
        CLUSTER_LOG.error("Topic %s not found in cluster metadata", "orders")

    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == ("DEBUG", "Topic orders not found in cluster metadata")


def test_each_topic_has_its_own_grace(
    noise: StartupNoise, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    CLUSTER_LOG.error("Topic %s not found in cluster metadata", "orders")
    clock.now = 30.0
    CLUSTER_LOG.error("Topic %s not found in cluster metadata", "payments")  # its first: still startup
    assert shown(caplog) == []


def test_coordinator_lines_are_debug_until_the_group_joins(
    noise: StartupNoise, monitor: Monitor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with client_of("primary"):
        COORDINATOR_LOG.error(REQUEST_FAILED, NOT_AVAILABLE)
        COORDINATOR_LOG.warning("Marking the coordinator dead (node %s)for group %s.", 1, "orders")
        assert shown(caplog) == []

        monitor.emit("partitions.assigned", cluster="primary", group="orders", partitions=["orders/0"])
        COORDINATOR_LOG.warning("Marking the coordinator dead (node %s)for group %s.", 1, "orders")
        COORDINATOR_LOG.error(REQUEST_FAILED, NOT_AVAILABLE)

    assert shown(caplog) == [  # once joined, a lost coordinator is news: a broker went away
        ("WARNING", f"Marking the coordinator dead (node 1)for group orders. {STARTUP_NOTE}"),
        ("ERROR", f"Group Coordinator Request failed: {NOT_AVAILABLE} {STARTUP_NOTE}"),
    ]


def test_a_coordinator_that_never_comes_is_shown_after_the_grace(
    noise: StartupNoise, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with client_of("primary"):
        COORDINATOR_LOG.error(REQUEST_FAILED, NOT_AVAILABLE)
        clock.now = 25.0
        COORDINATOR_LOG.error(REQUEST_FAILED, NOT_AVAILABLE)

    [(level, message)] = shown(caplog)
    assert level == "ERROR"
    assert message.startswith(
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError (still so 25s"
    )


@pytest.mark.parametrize(
    ("logger", "line"),
    [
        (
            CONNECTION_LOG,
            "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9)",
        ),
        (COORDINATOR_LOG, "Group Coordinator Request failed: [Error 7] RequestTimedOutError"),
        (COORDINATOR_LOG, "OffsetCommit failed before join, ignoring: CommitFailedError"),
        (CLUSTER_LOG, "Topic orders is not authorized for this client"),
    ],
)
def test_every_other_line_passes_untouched(
    noise: StartupNoise, logger: logging.Logger, line: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with client_of("primary"):
        logger.error(line)
    assert shown(caplog) == [("ERROR", line)]


def test_uninstalled_it_demotes_nothing(
    clock: Clock, monitor: Monitor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    noise = StartupNoise({}, clock=clock)
    noise.install(monitor)
    noise.uninstall()
    CLUSTER_LOG.error("Topic %s not found in cluster metadata", "orders")
    assert shown(caplog) == [("ERROR", "Topic orders not found in cluster metadata")]


PRODUCE_RETRIED = "Got error produce response on topic-partition %s, retrying. Error: %s"
SENDER_LOG = logging.getLogger("aiokafka.producer.sender")


def test_a_produce_retried_for_want_of_a_leader_is_debug_only_on_a_topic_just_created(
    noise: StartupNoise, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    error = "<class 'aiokafka.errors.NotLeaderForPartitionError'>"
    with client_of("primary"):
        CLUSTER_LOG.warning("Topic %s is not available during auto-create initialization", "orders")
        SENDER_LOG.warning(PRODUCE_RETRIED, "TopicPartition(topic='orders', partition=0)", error)
        assert shown(caplog) == []

        SENDER_LOG.warning(PRODUCE_RETRIED, "TopicPartition(topic='payments', partition=0)", error)
        clock.now = 30.0
        SENDER_LOG.warning(PRODUCE_RETRIED, "TopicPartition(topic='orders', partition=0)", error)

    assert [level for level, _ in shown(caplog)] == ["WARNING", "WARNING"]  # a leader moved: news
    assert [message.split("'")[1] for _, message in shown(caplog)] == ["payments", "orders"]
