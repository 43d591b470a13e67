"""``app.routes``: where routes are declared, checked one by one as they are written."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypedDict

from aiostream_kafka.codecs import Decoder
from aiostream_kafka.consumer import Consumer
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.routing.route import INITIAL_OFFSETS, ISOLATION_LEVELS, Handler, Route, TopicConfig
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name

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
    max_wait_ms: int
    initial_offset: str
    isolation_level: str
    active: bool
    retry: Retry
    dead_letter_queue: DeadLetterQueue
    manual_offset_management: bool
    processing_timeout: float
    config: TopicConfig


class Routes:
    """The app's route declarations, in the order they were written."""

    def __init__(self) -> None:
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
        if not is_topic_name(topic):
            raise ConfigError(f"route for topic {topic!r}: {TOPIC_NAME_RULE}")
        unknown = set(options) - set(RouteOptions.__annotations__)
        if unknown:
            name = sorted(unknown)[0]
            close = difflib.get_close_matches(name, sorted(RouteOptions.__annotations__), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"route for topic {topic!r}: unknown option {name!r}{hint}")
        if "subscription_group" not in options and self._subscription_groups:
            options["subscription_group"] = self._subscription_groups[-1]
        route = Route(topic, handler=handler, consumer=consumer, **options)
        _check(route)
        self._routes.append(route)
        return route

    @contextmanager
    def subscription_group(self, name: str) -> Iterator[None]:
        """Routes declared inside share one consumer connection (per cluster and group)."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"a subscription group needs a non-empty name, not {name!r}")
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


def _check(route: Route) -> None:
    where = route.label
    if (route.handler is None) == (route.consumer is None):
        raise ConfigError(
            f"{where}: give exactly one of handler= (an async def) or consumer= (a Consumer class)"
        )
    if route.handler is not None and not inspect.iscoroutinefunction(route.handler):
        raise ConfigError(f"{where}: the handler {route.handler!r} must be an async def function")
    if route.consumer is not None:
        if not (isinstance(route.consumer, type) and issubclass(route.consumer, Consumer)):
            raise ConfigError(f"{where}: consumer= must be a subclass of aiostream_kafka.Consumer")
        if route.consumer.consume is Consumer.consume:
            raise ConfigError(
                f"{where}: {route.consumer.__name__} must implement async def consume(self, messages)"
            )
        if not inspect.iscoroutinefunction(route.consumer.consume):
            raise ConfigError(f"{where}: {route.consumer.__name__}.consume must be async def")
    if route.cluster is not None and route.kafka is not None:
        raise ConfigError(
            f"{where}: give either cluster= (a named cluster) or kafka= (inline settings), not both"
        )
    if not _is_int(route.max_messages) or route.max_messages < 1:
        raise ConfigError(f"{where}: max_messages must be a positive integer, not {route.max_messages!r}")
    if not _is_int(route.max_wait_ms) or route.max_wait_ms < 0:
        raise ConfigError(f"{where}: max_wait_ms must be a non-negative integer, not {route.max_wait_ms!r}")
    if route.retry is not None and not isinstance(route.retry, Retry):
        raise ConfigError(f"{where}: retry= takes aiostream_kafka.Retry(...), not {route.retry!r}")
    if route.dead_letter_queue is not None and not isinstance(route.dead_letter_queue, DeadLetterQueue):
        raise ConfigError(
            f"{where}: dead_letter_queue= takes aiostream_kafka.DeadLetterQueue(...), "
            f"not {route.dead_letter_queue!r}"
        )
    timeout = route.processing_timeout
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < math.inf
    ):
        raise ConfigError(f"{where}: processing_timeout must be positive seconds or None, not {timeout!r}")
    if route.config is not None and not isinstance(route.config, TopicConfig):
        raise ConfigError(f"{where}: config= takes aiostream_kafka.TopicConfig(...), not {route.config!r}")
    if route.initial_offset is not None and route.initial_offset not in INITIAL_OFFSETS:
        raise ConfigError(
            f"{where}: initial_offset must be 'earliest' or 'latest', not {route.initial_offset!r}"
        )
    if route.isolation_level is not None and route.isolation_level not in ISOLATION_LEVELS:
        raise ConfigError(
            f"{where}: isolation_level must be 'read_committed' or 'read_uncommitted', "
            f"not {route.isolation_level!r}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
