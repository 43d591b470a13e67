"""Topics the app needs, as they should look: a route's ``config=``, and ``app.topics`` for
those no route consumes (produced to, DLQs, ...)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from aiostream_kafka.contracts.topics import check_declaration
from aiostream_kafka.deprecation import module_getattr
from aiostream_kafka.topic_config import TopicConfig


@dataclass(frozen=True)
class DeclaredTopic:
    """A topic the app needs on one cluster, as it should look; ``topics migrate`` and
    ``app.check()`` compare it with what the cluster has."""

    name: str
    cluster: str
    config: TopicConfig
    source: str  # for messages: which route or declaration asked for it


class Topics:
    """``app.topics``: declarations on ``primary`` unless they name another cluster.
    ``clusters``: the app's cluster names, so that a declaration naming another fails at once."""

    def __init__(self, *, primary: str, clusters: Collection[str] | None = None) -> None:
        self._primary = primary
        self._clusters = clusters
        self._declared: list[DeclaredTopic] = []

    def declare(
        self,
        name: str,
        *,
        cluster: str | None = None,
        partitions: int = 1,
        replication_factor: int = 1,
        settings: Mapping[str, str | int] | None = None,
    ) -> DeclaredTopic:
        """Declare a topic on ``cluster`` (the primary by default) for ``topics migrate`` and checks."""
        check_declaration(name, cluster, self._clusters)
        declared = DeclaredTopic(
            name,
            self._primary if cluster is None else cluster,
            TopicConfig(partitions, replication_factor, settings or {}),
            f"app.topics.declare({name!r})",
        )
        self._declared.append(declared)
        return declared

    def __iter__(self) -> Iterator[DeclaredTopic]:
        return iter(self._declared)


__getattr__ = module_getattr(
    __name__, {"TopicDeclaration": ("aiostream_kafka.routing.declared:DeclaredTopic", "DeclaredTopic")}
)
