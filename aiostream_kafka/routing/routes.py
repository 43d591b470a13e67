"""``app.routes``: where routes are declared, checked one by one as they are written
(``contracts.route``)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypedDict

from aiostream_kafka import deprecation
from aiostream_kafka.codecs import Decoder
from aiostream_kafka.consumer import Consumer
from aiostream_kafka.contracts.route import (
    check_declaration,
    check_max_wait_ms,
    check_route,
    check_subscription_group,
)
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.flow import Throttle
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions
from aiostream_kafka.routing.route import Filter, Handler, Route
from aiostream_kafka.topic_config import TopicConfig

if TYPE_CHECKING:
    from typing_extensions import Unpack


class RouteOptions(TypedDict, total=False):
    """Everything a route can say besides its topic and handler (see ``Route``)."""

    cluster: str
    kafka: Mapping[str, Any]
    group_id: str
    subscription_group: str
    payload: Any
    format: str
    decoder: Decoder
    max_messages: int
    max_wait: float
    max_wait_ms: int  # deprecated: max_wait, in seconds
    max_poll_records: int | None
    initial_offset: str
    isolation_level: str
    active: bool
    retry: Retry
    dead_letter_queue: DeadLetterQueue
    manual_offset_management: bool
    processing_timeout: float
    exactly_once: bool
    virtual_partitions: VirtualPartitions | None
    config: TopicConfig
    filter: Filter
    throttle: Throttle
    expire_after: float
    delay: float


class Routes:
    """The app's route declarations, in the order they were written.

    ``clusters``: the app's cluster names, so that a route naming another fails where it is
    declared; without them (``Routes()`` on its own) the topology refuses it when built.
    """

    def __init__(self, *, clusters: Collection[str] | None = None) -> None:
        self._clusters = clusters
        self._routes: list[Route] = []
        self._subscription_groups: list[str] = []
        self._frozen_reason: str | None = None

    def topic(
        self,
        topic: str,
        *,
        consumer: type[Consumer] | None = None,
        handler: Handler | None = None,
        **options: Unpack[RouteOptions],
    ) -> Route:
        """Route ``topic`` to a ``Consumer`` subclass or an ``async def`` handler."""
        if self._frozen_reason:
            raise ConfigError(f"cannot add a route for topic {topic!r}: {self._frozen_reason}")
        check_declaration(topic, options, RouteOptions.__annotations__)
        settings: dict[str, Any] = dict(options)
        if "max_wait_ms" in settings:
            deprecation.warn("max_wait_ms=", "max_wait= (seconds)")
            settings["max_wait"] = check_max_wait_ms(topic, settings.pop("max_wait_ms")) / 1000
        if "subscription_group" not in settings and self._subscription_groups:
            settings["subscription_group"] = self._subscription_groups[-1]
        route = Route(topic, handler=handler, consumer=consumer, **settings)
        check_route(route, self._clusters)
        self._routes.append(route)
        return route

    @contextmanager
    def subscription_group(self, name: str) -> Iterator[None]:
        """Routes declared inside share one consumer connection (per cluster and group)."""
        check_subscription_group(name)
        self._subscription_groups.append(name)
        try:
            yield
        finally:
            self._subscription_groups.pop()

    def freeze(self, reason: str) -> None:
        self._frozen_reason = reason

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)
