"""The Monitor: every observable thing on the data path is an event here (DESIGN 6).

The runtime only emits; logging, tracing, metrics and the Web UI subscribe. Emitting an
event nobody listens to costs one dict lookup, so the hot path can emit freely.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiostream_kafka.errors import ConfigError

EVENTS = frozenset(
    {
        "app.started",
        "app.stopping",
        "app.stopped",
        "listener.started",
        "listener.crashed",
        "listener.restarted",
        "listener.stopped",
        "partitions.assigned",
        "partitions.revoked",
        "batch.received",
        "batch.processed",
        "batch.failed",
        "offsets.committed",
        "message.produced",
        "produce.failed",
        "dlq.dispatched",
        "retry.scheduled",
        "error.occurred",
        "statistics.emitted",
    }
)
ALL = "*"

log = logging.getLogger("aiostream_kafka.monitor")


@dataclass(frozen=True)
class Event:
    name: str
    payload: Mapping[str, Any]
    time: float = field(default_factory=time.time)

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.payload.get(key, default)


Subscriber = Callable[[Event], None]


class Monitor:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, name: str, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every ``name`` event (``"*"``: every event); returns an unsubscribe."""
        if name != ALL and name not in EVENTS:
            close = difflib.get_close_matches(name, sorted(EVENTS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown monitor event {name!r}{hint}")
        subscribers = self._subscribers.setdefault(name, [])
        subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in subscribers:
                subscribers.remove(subscriber)

        return unsubscribe

    def listens_to(self, name: str) -> bool:
        return bool(self._subscribers.get(name) or self._subscribers.get(ALL))

    def emit(self, name: str, **payload: Any) -> None:
        specific = self._subscribers.get(name)
        everything = self._subscribers.get(ALL)
        if not specific and not everything:
            return
        event = Event(name, payload)
        for subscriber in (*(specific or ()), *(everything or ())):
            try:
                subscriber(event)
            except Exception:  # an observer must never break the data path
                log.exception("monitor subscriber %r failed on %s", subscriber, name)
