from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_clusters import KafkaClusters

KAFKA_DIRS = ("integration", "reliability")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/reliability talk to real Kafka."""
    for item in items:
        if Path(item.path).parent.name in KAFKA_DIRS:
            item.add_marker(pytest.mark.kafka)
        if isinstance(item, pytest.Function) and item.get_closest_marker("kafka"):
            item.fixturenames.insert(0, "kafka")


@pytest.fixture(autouse=True)
def log_levels() -> Iterator[None]:
    """What ``configure_logging`` (and so the CLI's commands) sets stays in the test that set it."""
    loggers = [logging.getLogger(name) for name in ("aiostream_kafka", "aiokafka")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaClusters]:
    """Both local clusters, reused when running and started otherwise.

    Clusters this fixture started are stopped at the end of the session, unless
    AIOSTREAM_KAFKA_KEEP=1 asks to keep them for the next run.
    """
    clusters = KafkaClusters()
    started = not all(clusters.ready(name) for name in clusters.names)
    if started:
        clusters.up()
    yield clusters
    if started and os.environ.get("AIOSTREAM_KAFKA_KEEP") != "1":
        clusters.down()


@pytest.fixture
def primary(kafka: KafkaClusters) -> str:
    return kafka.primary


@pytest.fixture
def secondary(kafka: KafkaClusters) -> str:
    return kafka.secondary


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test (or earlier run) has used."""
    base = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def secure_cluster(kafka: KafkaClusters) -> Iterator[dict[str, Any]]:
    """The TLS + SASL cluster (tools/kafka: ``up secure``), started for the tests that need it
    and stopped after them if they started it; yields its client.json (servers, CA, users)."""
    started = not kafka.ready_secure()
    if started:
        kafka.up("secure")
    yield kafka.credentials("secure")
    if started and os.environ.get("AIOSTREAM_KAFKA_KEEP") != "1":
        kafka.launcher("down", "secure")
