"""The contract of a route: its topic, what handles it and every option, checked as it is
declared (``app.route``, ``app.routes.topic``), each error naming the route."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from aiostream_kafka.consumer import Consumer
from aiostream_kafka.contracts.checks import (
    callable_name,
    did_you_mean,
    is_async_function,
    is_number,
    is_seconds,
    is_text,
    is_whole_number,
)
from aiostream_kafka.contracts.cluster import check_known_cluster, may_be_inline
from aiostream_kafka.contracts.codecs import check_decoder, check_format
from aiostream_kafka.contracts.flow import check_flow
from aiostream_kafka.errors import ConfigError, UnknownClusterError
from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.flow import Throttle
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions
from aiostream_kafka.routing.route import INITIAL_OFFSETS, ISOLATION_LEVELS, Route
from aiostream_kafka.topic_config import TopicConfig
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name


def check_declaration(topic: object, options: Mapping[str, object], known: Iterable[str]) -> None:
    """The topic is one Kafka accepts, and every option is one of ``known``."""
    if not is_topic_name(topic):
        raise ConfigError(f"route for topic {topic!r}: {TOPIC_NAME_RULE}")
    unknown = set(options) - set(known)
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(f"route for topic {topic!r}: unknown option {name!r}{did_you_mean(name, known)}")


def check_max_wait_ms(topic: str, wait: object) -> int:
    """The old ``max_wait_ms=``, still taken (in seconds as ``max_wait``) while it is whole."""
    if not is_whole_number(wait, 0):
        raise ConfigError(f"route for topic {topic!r}: max_wait_ms must be a whole number >= 0, not {wait!r}")
    return wait


def check_subscription_group(name: object) -> None:
    if not is_text(name):
        raise ConfigError(f"a subscription group needs a non-empty name, not {name!r}")


def check_route(route: Route, clusters: Collection[str] | None) -> None:
    """Everything one route says, on its own. ``clusters``: the app's, to refuse a cluster it
    does not have now rather than when the app is loaded (None: not known here)."""
    where = route.label
    _check_handler(route)
    if route.cluster is not None and route.kafka is not None:
        raise ConfigError(
            f"{where}: give either cluster= (a named cluster) or kafka= (inline settings), not both"
        )
    check_known_cluster(route.cluster, clusters, where)
    if not is_whole_number(route.max_messages, 1):
        raise ConfigError(f"{where}: max_messages must be a positive integer, not {route.max_messages!r}")
    if not (is_number(route.max_wait) and route.max_wait >= 0):
        raise ConfigError(f"{where}: max_wait must be seconds >= 0, not {route.max_wait!r}")
    if route.max_poll_records is not None and not is_whole_number(route.max_poll_records, 1):
        raise ConfigError(
            f"{where}: max_poll_records must be a positive integer or None, not {route.max_poll_records!r}"
        )
    _check_takes(route, "retry", route.retry, Retry)
    _check_dead_letter_queue(route, clusters)
    _check_takes(route, "throttle", route.throttle, Throttle, "messages=, per=")
    check_flow(route)
    timeout = route.processing_timeout
    if timeout is not None and not is_seconds(timeout):
        raise ConfigError(f"{where}: processing_timeout must be positive seconds or None, not {timeout!r}")
    _check_takes(route, "config", route.config, TopicConfig)
    if route.initial_offset is not None and route.initial_offset not in INITIAL_OFFSETS:
        raise ConfigError(
            f"{where}: initial_offset must be 'earliest' or 'latest', not {route.initial_offset!r}"
        )
    if route.isolation_level is not None and route.isolation_level not in ISOLATION_LEVELS:
        raise ConfigError(
            f"{where}: isolation_level must be 'read_committed' or 'read_uncommitted', "
            f"not {route.isolation_level!r}"
        )
    check_format(route.format, f"{where}: format")
    check_decoder(route.decoder, where)
    _check_virtual_partitions(route)
    _check_exactly_once(route)


def _check_virtual_partitions(route: Route) -> None:
    """Virtual partitions commit and retry parts of a batch on their own, which one
    transaction per batch cannot: an exactly-once route is refused them."""
    if route.virtual_partitions is None:
        return
    _check_takes(route, "virtual_partitions", route.virtual_partitions, VirtualPartitions)
    if route.exactly_once is True:
        raise ConfigError(
            f"{route.label}: exactly_once=True commits each batch whole in one transaction, while "
            f"virtual partitions commit and retry parts of a batch on their own; drop one of them"
        )


def _check_exactly_once(route: Route) -> None:
    """What an exactly-once route cannot be: it commits each whole batch in its transaction,
    reads only committed records, and its transaction lives on its own cluster."""
    where = route.label
    if not isinstance(route.exactly_once, bool):
        raise ConfigError(f"{where}: exactly_once must be True or False, not {route.exactly_once!r}")
    if not route.exactly_once:
        return
    if route.manual_offset_management:
        raise ConfigError(
            f"{where}: exactly_once=True commits each batch whole, with its produces, in one "
            f"transaction, so it cannot take manual_offset_management=True; drop one of them"
        )
    if route.isolation_level == "read_uncommitted":
        raise ConfigError(
            f"{where}: exactly_once=True reads committed records only; drop "
            f"isolation_level='read_uncommitted'"
        )
    queue = route.dead_letter_queue
    named = queue.cluster if isinstance(queue, DeadLetterQueue) and queue.topic is not None else None
    if named is not None and route.cluster is not None and named != route.cluster:
        raise cross_cluster_dead_letters(route, route.cluster, named)


def cross_cluster_dead_letters(route: Route, cluster: str, dead_letter_cluster: str) -> ConfigError:
    """The error for an exactly-once route whose dead-letter queue is on another cluster."""
    return ConfigError(
        f"{route.label}: exactly_once=True, but the dead-letter queue is on cluster "
        f"{dead_letter_cluster!r} and the topic on {cluster!r}; a transaction covers one cluster, "
        f"so put the dead-letter queue on {cluster!r} (docs/exactly-once.md)"
    )


def unknown_dead_letter_cluster(route: Route, clusters: Collection[str]) -> UnknownClusterError:
    """The error for a dead-letter queue on a cluster the app does not have."""
    assert route.dead_letter_queue is not None
    name = route.dead_letter_queue.cluster
    return UnknownClusterError(
        f"{route.label}: the dead-letter queue names cluster {name!r}; "
        f"the app has: {', '.join(clusters)}{did_you_mean(name, clusters)}"
    )


def _check_takes(route: Route, option: str, value: object, kind: type, arguments: str = "...") -> None:
    """An option that takes one of our classes (or None), refused alike whichever it is: the
    error names the class to build, since a dict or a Backoff is the usual slip."""
    if value is not None and not isinstance(value, kind):
        raise ConfigError(
            f"{route.label}: {option}= takes aiostream_kafka.{kind.__name__}({arguments}), not {value!r}"
        )


def _check_handler(route: Route) -> None:
    where = route.label
    if (route.handler is None) == (route.consumer is None):
        raise ConfigError(
            f"{where}: give exactly one of handler= (an async def) or consumer= (a Consumer class)"
        )
    if route.handler is not None and not is_async_function(route.handler):
        raise ConfigError(
            f"{where}: the handler {callable_name(route.handler)} must be an async def function"
        )
    if route.consumer is not None:
        if not (isinstance(route.consumer, type) and issubclass(route.consumer, Consumer)):
            raise ConfigError(f"{where}: consumer= must be a subclass of aiostream_kafka.Consumer")
        if route.consumer.consume is Consumer.consume:
            raise ConfigError(
                f"{where}: {route.consumer.__name__} must implement async def consume(self, messages)"
            )
        if not is_async_function(route.consumer.consume):
            raise ConfigError(f"{where}: {route.consumer.__name__}.consume must be async def")


def _check_dead_letter_queue(route: Route, clusters: Collection[str] | None) -> None:
    queue = route.dead_letter_queue
    if queue is None:
        return
    _check_takes(route, "dead_letter_queue", queue, DeadLetterQueue)
    named = queue.cluster
    if clusters is not None and named is not None and named not in clusters and not may_be_inline(named):
        raise unknown_dead_letter_cluster(route, clusters)
