"""The contract of ``app.web.enable(...)``: status reporting for the Web UI."""

from __future__ import annotations

from collections.abc import Collection

from aiostream_kafka.contracts.checks import is_seconds
from aiostream_kafka.contracts.cluster import check_known_cluster
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name


def check_reporting(
    *,
    enabled: bool,
    cluster: object,
    clusters: Collection[str] | None,
    interval: object,
    reports_topic: object,
    errors_topic: object,
) -> None:
    if enabled:
        raise ConfigError("app.web.enable() was called twice; call it once")
    if not is_seconds(interval):
        raise ConfigError(f"app.web.enable(interval={interval!r}): positive seconds")
    for setting, topic in (("reports_topic", reports_topic), ("errors_topic", errors_topic)):
        if not is_topic_name(topic):
            raise ConfigError(f"app.web.enable({setting}={topic!r}): {TOPIC_NAME_RULE}")
    check_known_cluster(cluster, clusters, "app.web.enable(cluster=...)")
