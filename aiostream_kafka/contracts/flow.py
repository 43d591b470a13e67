"""The contract of a route's flow options (``filter=``, ``throttle=``, ``expire_after=``,
``delay=``) and of the ``Throttle`` and ``Pause`` values they take."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING

from aiostream_kafka.contracts.checks import (
    callable_name,
    is_async_function,
    is_number,
    is_seconds,
    is_whole_number,
)
from aiostream_kafka.errors import ConfigError

if TYPE_CHECKING:
    from aiostream_kafka.processing.flow import Throttle
    from aiostream_kafka.routing.route import Route


def check_throttle(throttle: Throttle, scopes: Collection[str]) -> None:
    if not is_whole_number(throttle.messages, 1):
        raise ConfigError(f"Throttle(messages=...) must be a whole number >= 1, not {throttle.messages!r}")
    if not is_seconds(throttle.per):
        raise ConfigError(f"Throttle(per=...) must be positive seconds, not {throttle.per!r}")
    if throttle.scope not in scopes:
        raise ConfigError(
            f"Throttle(scope=...) must be one of {', '.join(map(repr, scopes))}, not {throttle.scope!r}"
        )


def check_pause(until: object) -> None:
    if isinstance(until, datetime):
        if until.tzinfo is None:
            raise ValueError(
                f"Pause(until={until!r}): give a timezone-aware datetime (e.g. tzinfo=timezone.utc), "
                f"or seconds from now"
            )
    elif not (is_number(until) and until >= 0):
        raise ValueError(f"Pause(until={until!r}): a timezone-aware datetime, or seconds >= 0 from now")


def check_flow(route: Route) -> None:
    """What a route holds back from its handler, checked as it is declared (``throttle=``'s
    type is checked with the route's other policy objects, in ``contracts.route``)."""
    where = route.label
    predicate = route.filter
    if predicate is not None:
        if not callable(predicate):
            raise ConfigError(f"{where}: filter= takes a function of a Message, not {predicate!r}")
        if is_async_function(predicate) or is_async_function(type(predicate).__call__):
            raise ConfigError(
                f"{where}: the filter {callable_name(predicate)} must be a plain def (it runs for "
                f"each message before the handler); do I/O in the handler instead"
            )
    for name, value in (("expire_after", route.expire_after), ("delay", route.delay)):
        if value is not None and not is_seconds(value):
            raise ConfigError(f"{where}: {name} must be positive seconds or None, not {value!r}")
    if route.expire_after is not None and route.delay is not None and route.expire_after <= route.delay:
        raise ConfigError(
            f"{where}: expire_after={route.expire_after} is not longer than delay={route.delay}, so "
            f"every message would expire before it is due; make expire_after longer than delay"
        )
