"""The Monitor: every observable thing on the data path is an event here.

The runtime only emits; logging, tracing, metrics and the Web UI subscribe. Emitting an
event nobody listens to costs one dict lookup, so the hot path can emit freely.
The event names and their fields are a contract, documented in docs/events.md.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Container, Mapping
from time import time as _now
from typing import Any

from aiostream_kafka.contracts.events import check_event_name, check_listener
from aiostream_kafka.deprecation import module_getattr

EVENTS = frozenset(
    {
        "app.started",
        "app.stopping",
        "app.stopped",
        "cluster.unreachable",
        "cluster.reachable",
        "listener.started",
        "listener.crashed",
        "listener.restarted",
        "listener.stopped",
        "partitions.assigned",
        "partitions.revoked",
        "batch.received",
        "batch.processed",
        "batch.failed",
        "batch.slow",
        "fetch.failed",
        "fetch.recovered",
        "offsets.committed",
        "message.producing",
        "message.produced",
        "batch.producing",
        "batch.produced",
        "produce.failed",
        "records.sent",
        "dlq.dispatched",
        "transaction.begun",
        "transaction.committed",
        "transaction.aborted",
        "retry.scheduled",
        "messages.filtered",
        "messages.expired",
        "partition.throttled",
        "partition.delayed",
        "partition.paused",
        "error.occurred",
        "statistics.emitted",
        "loop.blocked",
        "schedule.assigned",
        "schedule.revoked",
        "schedule.tick",
    }
)
ALL = "*"
#: What each message produced through ``send`` reports, and ``produce_many`` reports per batch.
PER_MESSAGE_PRODUCE = ("message.producing", "message.produced")

log = logging.getLogger("aiostream_kafka.monitor")


class MonitorEvent:
    """One thing that happened: its name, its fields (``event["topic"]``) and when (epoch s).

    (Not ``Event``: that is asyncio's and anyio's synchronisation primitive, which handlers
    import too.)"""

    __slots__ = ("name", "payload", "time")

    def __init__(self, name: str, payload: Mapping[str, Any], time: float | None = None) -> None:
        self.name = name
        self.payload = payload
        self.time = _now() if time is None else time

    def __repr__(self) -> str:
        return f"MonitorEvent({self.name!r}, {dict(self.payload)!r})"

    def __getitem__(self, key: str) -> Any:
        return self.payload[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.payload.get(key, default)


Subscriber = Callable[[MonitorEvent], None] | Callable[[MonitorEvent], Awaitable[None]]


def method_name(event: str) -> str:
    """``batch.processed`` -> ``on_batch_processed``: what a listener class implements."""
    return "on_" + event.replace(".", "_")


class Monitor:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable[[MonitorEvent], None]]] = {}
        #: The events someone would receive. ``name in monitor.heard`` is ``listens_to(name)``
        #: without a call, for the per-message paths; read it, never change it.
        self.heard: Container[str] = frozenset()
        #: The events someone subscribed to by name, not only through ``"*"``: what a path
        #: that can report a batch instead of each message asks (a ``"*"`` subscriber takes
        #: whatever is emitted); read it, never change it.
        self.named: Container[str] = frozenset()
        #: Whether something takes each produced message's events and not a batch's instead:
        #: a subscriber of ``message.producing``/``message.produced`` that is not (or whose
        #: object is not) also subscribed to ``batch.producing``. ``produce_many`` then sends
        #: each message on its own, so that it sees each.
        self.per_message = False
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, name: str | object, subscriber: Subscriber | None = None) -> Callable[[], None]:
        """Call ``subscriber`` for every ``name`` event (``"*"``: every event); returns an unsubscribe.

        ``subscriber`` may be a plain or an ``async`` function (the latter runs as its own
        task). Or pass one object instead of both arguments: each of its ``on_<event>``
        methods (``on_batch_processed``) is subscribed to that event.
        """
        if subscriber is None:
            return self._subscribe_object(name)
        name = check_event_name(name, EVENTS, everything=ALL)
        call = self._scheduling(subscriber) if inspect.iscoroutinefunction(subscriber) else subscriber
        subscribers = self._subscribers.setdefault(name, [])
        subscribers.append(call)  # type: ignore[arg-type]
        self._update_heard()

        def unsubscribe() -> None:
            if call in subscribers:
                subscribers.remove(call)
                self._update_heard()

        return unsubscribe

    def _update_heard(self) -> None:
        self.named = frozenset(name for name, subscribers in self._subscribers.items() if subscribers) - {ALL}
        self.heard = _EVERYTHING if self._subscribers.get(ALL) else self.named
        batches = {_owner(s) for s in self._subscribers.get("batch.producing", ())}
        self.per_message = any(
            _owner(s) not in batches for name in PER_MESSAGE_PRODUCE for s in self._subscribers.get(name, ())
        )

    def _subscribe_object(self, listener: object) -> Callable[[], None]:
        names = {method_name(event): event for event in EVENTS}
        methods = [
            attr for attr in dir(listener) if attr.startswith("on_") and callable(getattr(listener, attr))
        ]
        check_listener(listener, methods, names)
        unsubscribes = [self.subscribe(names[m], getattr(listener, m)) for m in methods]

        def unsubscribe_all() -> None:
            for unsubscribe in unsubscribes:
                unsubscribe()

        return unsubscribe_all

    def _scheduling(
        self, subscriber: Callable[[MonitorEvent], Awaitable[None]]
    ) -> Callable[[MonitorEvent], None]:
        def schedule(event: MonitorEvent) -> None:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(_run(subscriber, event))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

        return schedule

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an async monitor subscriber failed", exc_info=task.exception())

    def listens_to(self, name: str) -> bool:
        """Whether an ``emit(name, ...)`` would reach anyone: check before building costly payloads."""
        return name in self.heard

    def emit(self, name: str, /, **payload: Any) -> None:
        if name not in self.heard:
            return
        specific = self._subscribers.get(name)
        everything = self._subscribers.get(ALL)
        event = MonitorEvent(name, payload)
        for subscriber in (*(specific or ()), *(everything or ())):
            try:
                subscriber(event)
            except Exception:
                # An observer must never break the data path, and its failure is only logged:
                # emitting an event about it could fail the same way, forever.
                log.exception("monitor subscriber %r failed on %s", subscriber, name)


def _owner(subscriber: Callable[[MonitorEvent], None]) -> int:
    """Who subscribed: a method's object (one listener, several events), else the function."""
    return id(getattr(subscriber, "__self__", subscriber))


class _Everything:
    def __contains__(self, name: object) -> bool:
        return True


_EVERYTHING = _Everything()


async def _run(subscriber: Callable[[MonitorEvent], Awaitable[None]], event: MonitorEvent) -> None:
    await subscriber(event)


__getattr__ = module_getattr(
    __name__,
    {"Event": ("aiostream_kafka.instrumentation.monitor:MonitorEvent", "aiostream_kafka.MonitorEvent")},
)
