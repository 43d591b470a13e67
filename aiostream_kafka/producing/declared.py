"""``app.produces(...)``: the topics an app says it produces to, and what they carry.

Producers take any topic at run time, so nothing else can tell what an app sends; the
AsyncAPI document (``aiostream-kafka asyncapi``) lists these as its send operations.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from aiostream_kafka.contracts.produced import check_produced


@dataclass(frozen=True)
class ProducedTopic:
    """A topic the app produces to on one cluster, with the payload type and format it sends."""

    name: str
    cluster: str
    payload: Any  # bytes: sent as they are
    format: str
    description: str | None = None


class ProducedTopics:
    """``app.produced``: declarations on app.producer's cluster unless they name another,
    in the app's producer format unless they say otherwise."""

    def __init__(self, *, cluster: str, format: str, clusters: Collection[str] | None = None) -> None:
        self._cluster = cluster
        self._format = format
        self._clusters = clusters
        self._declared: dict[tuple[str, str], ProducedTopic] = {}

    def declare(
        self,
        topic: str,
        *,
        payload: Any = bytes,
        cluster: str | None = None,
        format: str | None = None,
        description: str | None = None,
    ) -> ProducedTopic:
        """Say that the app produces ``payload`` to ``topic`` on ``cluster``."""
        cluster = self._cluster if cluster is None else cluster
        format = self._format if format is None else format
        check_produced(
            topic,
            cluster=cluster,
            clusters=self._clusters,
            payload=payload,
            format=format,
            description=description,
            declared=self._declared.keys(),
        )
        produced = ProducedTopic(topic, cluster, payload, format, description)
        self._declared[(cluster, topic)] = produced
        return produced

    def __iter__(self) -> Iterator[ProducedTopic]:
        return iter(self._declared.values())
