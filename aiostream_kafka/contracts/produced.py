"""The contract of ``app.produces(...)``: a topic name, one of the app's clusters, a payload
msgspec can encode and describe, a known format, said once per cluster and topic."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from aiostream_kafka.contracts.cluster import check_known_cluster
from aiostream_kafka.contracts.codecs import check_format
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name


def check_produced(
    topic: object,
    *,
    cluster: object,
    clusters: Collection[str] | None,
    payload: Any,
    format: object,
    description: object,
    declared: Collection[tuple[str, str]],
) -> None:
    where = f"app.produces({topic!r})"
    if not is_topic_name(topic):
        raise ConfigError(f"{where}: {TOPIC_NAME_RULE}")
    check_known_cluster(cluster, clusters, where)
    check_format(format, f"{where}: format")
    if description is not None and not isinstance(description, str):
        raise ConfigError(f"{where}: description must be text, not {type(description).__name__}")
    if payload is not bytes:
        try:
            msgspec.json.schema(payload)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: msgspec cannot describe payload={payload!r}: {error}") from None
    if (cluster, topic) in declared:
        raise ConfigError(
            f"{where}: topic {topic!r} on cluster {cluster!r} is declared twice; declare it once "
            f"(a union payload if it carries several types)"
        )
