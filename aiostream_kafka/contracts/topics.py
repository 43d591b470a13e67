"""The contract of declared topics: ``TopicConfig(...)`` and ``app.topics.declare(...)``."""

from __future__ import annotations

from collections.abc import Collection

from aiostream_kafka.contracts.checks import is_text_mapping, is_whole_number
from aiostream_kafka.contracts.cluster import check_known_cluster
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name


def check_topic_config(partitions: object, replication_factor: object, settings: object) -> None:
    for name, value in (("partitions", partitions), ("replication_factor", replication_factor)):
        if not is_whole_number(value, 1):
            raise ConfigError(f"TopicConfig({name}={value!r}): a whole number >= 1")
    if not is_text_mapping(settings):
        raise ConfigError(f"TopicConfig(settings={settings!r}): a mapping of Kafka topic config names")


def check_declaration(name: object, cluster: object, clusters: Collection[str] | None) -> None:
    """``app.topics.declare(name, cluster=...)``; the rest is ``TopicConfig``'s."""
    where = f"app.topics.declare({name!r})"
    if not is_topic_name(name):
        raise ConfigError(f"{where}: {TOPIC_NAME_RULE}")
    check_known_cluster(cluster, clusters, where)
