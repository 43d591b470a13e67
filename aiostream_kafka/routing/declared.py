"""``app.topics``: topics the app needs that no route consumes (produced to, DLQs, ...)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from aiostream_kafka.contracts.topics import check_declaration
from aiostream_kafka.routing.route import TopicConfig


@dataclass(frozen=True)
class TopicDeclaration:
    name: str
    cluster: str | None  # None: the primary
    config: TopicConfig


class Topics:
    """``clusters``: the app's cluster names, so that a declaration naming another fails at once."""

    def __init__(self, *, clusters: Collection[str] | None = None) -> None:
        self._clusters = clusters
        self._declared: list[TopicDeclaration] = []

    def declare(
        self,
        name: str,
        *,
        cluster: str | None = None,
        partitions: int = 1,
        replication_factor: int = 1,
        settings: Mapping[str, str | int] | None = None,
    ) -> TopicDeclaration:
        """Declare a topic on ``cluster`` (the primary by default) for ``topics migrate`` and checks."""
        check_declaration(name, cluster, self._clusters)
        declaration = TopicDeclaration(
            name, cluster, TopicConfig(partitions, replication_factor, settings or {})
        )
        self._declared.append(declaration)
        return declaration

    def __iter__(self) -> Iterator[TopicDeclaration]:
        return iter(self._declared)
