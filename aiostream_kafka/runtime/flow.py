"""What a route holds back from its handler: filtered, expired, throttled and delayed messages.

Applied to each partition's batch before the handler, in one pass over its records, in
offset order: a record older than ``expire_after`` is skipped (expired); one younger than
``delay`` stops the pass (the partition waits until it is due); the ``filter`` skips it
(False) or stops the pass (``Pause``); a spent ``throttle`` budget stops the pass. What was
decided before the stop goes on (handed, or skipped and committed as done); from the stop
on, the partition is sought back and paused until then, so those records are fetched and
decided again. A route with none of these options has no ``Flow`` at all: its batches cost
nothing more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import Any, TypeAlias

from aiokafka import ConsumerRecord, TopicPartition

from aiostream_kafka.codecs import Decoder
from aiostream_kafka.contracts.checks import callable_name
from aiostream_kafka.errors import DecodeError, FilterError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.messages import Message, from_records
from aiostream_kafka.processing.flow import Pause, Throttle
from aiostream_kafka.routing.route import Filter, Route
from aiostream_kafka.runtime.clock import Clock

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass(frozen=True)
class Hold:
    """Why a partition waits from the record it stopped at, and until when (app-clock epoch s)."""

    kind: str  # "throttled", "delayed" or "paused" (by the filter)
    until: float
    wait: float  # seconds from when it was decided


@dataclass
class Admission:
    """One batch's records, decided."""

    handed: Sequence[Record]  # what goes to the handler, in offset order
    messages: list[Message[Any]] | None  # their Message objects, when the filter made them
    end: int  # the offset after the records decided: where a hold resumes
    expired: int = 0
    filtered: int = 0
    hold: Hold | None = None
    failed: tuple[Record, Exception] | None = None  # the filter raised on this record


@dataclass
class Budget:
    """A throttle's window: what was handed in the last ``per`` seconds, one entry per batch
    (never per message), so "at most N in any ``per`` seconds" holds exactly."""

    limit: int
    per: float
    _spent: deque[tuple[float, int]] = field(default_factory=deque)
    _total: int = 0

    def available(self, now: float) -> int:
        spent = self._spent
        while spent and spent[0][0] <= now - self.per:
            self._total -= spent.popleft()[1]
        return max(0, self.limit - self._total)

    def spend(self, now: float, count: int) -> None:
        if count:
            self._spent.append((now, count))
            self._total += count

    def next_free(self, now: float) -> float:
        """When at least one more message may be handed (after ``available`` said none)."""
        over = self._total - self.limit + 1
        for at, count in self._spent:
            over -= count
            if over <= 0:
                return at + self.per
        return now


class Flow:
    def __init__(self, route: Route, clock: Clock, *, cluster: str, decoder: Decoder | None) -> None:
        self._clock = clock
        self._cluster = cluster
        self._decoder = decoder
        self._filter: Filter | None = route.filter
        self._filter_name = callable_name(route.filter) if route.filter is not None else ""
        self._label = route.label
        self._expire_after_ms = None if route.expire_after is None else route.expire_after * 1000
        self._delay_ms = None if route.delay is None else route.delay * 1000
        self.throttle: Throttle | None = route.throttle
        self.expire_after = route.expire_after
        self.delay = route.delay
        self._budgets: dict[object, Budget] = {}

    def _budget(self, tp: TopicPartition) -> Budget:
        throttle = self.throttle
        assert throttle is not None
        key = tp if throttle.scope == "partition" else None
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = Budget(throttle.messages, throttle.per)
        return budget

    def admit(self, tp: TopicPartition, records: Sequence[Record]) -> Admission:
        """Decide ``records`` (one partition's, in offset order) as of now on the app's clock."""
        now = self._clock.now()
        expired_before = None if self._expire_after_ms is None else now * 1000 - self._expire_after_ms
        due_by = None if self._delay_ms is None else now * 1000 - self._delay_ms
        predicate = self._filter
        messages = from_records(records, self._cluster, self._decoder) if predicate is not None else None
        budget = self._budget(tp) if self.throttle is not None else None
        allowed = budget.available(now) if budget is not None else len(records)
        if predicate is None and _all_pass(records, expired_before, due_by):
            return self._first(records, allowed, budget, now)
        handed: list[Record] = []
        kept: list[Message[Any]] | None = [] if messages is not None else None
        admission = Admission(handed, kept, records[-1].offset + 1)
        throttled = False
        timed = expired_before is not None or due_by is not None
        pairs = zip(records, messages, strict=True) if messages is not None else zip(records, repeat(None))
        for record, message in pairs:
            if timed:
                stamp = record.timestamp  # -1 (no timestamp) is never expired nor delayed
                if expired_before is not None and 0 <= stamp < expired_before:
                    admission.expired += 1
                    continue
                if due_by is not None and stamp > due_by:
                    until = (stamp + (self._delay_ms or 0)) / 1000
                    admission.hold = Hold("delayed", until, until - now)
                    admission.end = record.offset
                    break
            if message is not None:
                assert predicate is not None
                try:
                    verdict = predicate(message)
                except DecodeError as error:  # the payload is poison: the route's DLQ takes it at once
                    admission.failed = (record, error)
                    admission.end = record.offset
                    break
                except Exception as error:
                    admission.failed = (record, self._filter_failed(record, error))
                    admission.end = record.offset
                    break
                if verdict is not True:
                    if verdict is False:
                        admission.filtered += 1
                        continue
                    admission.end = record.offset
                    if isinstance(verdict, Pause):
                        wait = verdict.seconds_from(now)
                        admission.hold = Hold("paused", now + wait, wait)
                    else:
                        admission.failed = (record, self._not_a_verdict(record, verdict))
                    break
            if len(handed) >= allowed:
                throttled = True
                admission.end = record.offset
                break
            handed.append(record)
            if kept is not None and message is not None:
                kept.append(message)
        if budget is not None:
            budget.spend(now, len(handed))
            if throttled:
                until = budget.next_free(now)
                admission.hold = Hold("throttled", until, until - now)
        return admission

    def _first(self, records: Sequence[Record], allowed: int, budget: Budget | None, now: float) -> Admission:
        """Every record passes but for the throttle: the first ``allowed`` are handed."""
        if allowed >= len(records):
            if budget is not None:
                budget.spend(now, len(records))
            return Admission(records, None, records[-1].offset + 1)
        assert budget is not None
        admission = Admission(records[:allowed], None, records[allowed].offset)
        budget.spend(now, allowed)
        until = budget.next_free(now)
        admission.hold = Hold("throttled", until, until - now)
        return admission

    def _filter_failed(self, record: Record, error: Exception) -> FilterError:
        failure = FilterError(
            f"{self._label}: the filter {self._filter_name} raised {type(error).__name__}: {error}",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        failure.__cause__ = error
        return failure

    def _not_a_verdict(self, record: Record, verdict: object) -> FilterError:
        return FilterError(
            f"{self._label}: the filter {self._filter_name} returned {verdict!r}; it must return True "
            f"(hand the message on), False (skip it) or aiostream_kafka.Pause(until=...)",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )

    def report(
        self, monitor: Monitor, where: dict[str, Any], first_offset: int, admission: Admission
    ) -> None:
        """The batch's skips, one event per kind (never per message)."""
        if admission.expired:
            monitor.emit(
                "messages.expired",
                **where,
                count=admission.expired,
                first_offset=first_offset,
                expire_after=self.expire_after,
            )
        if admission.filtered:
            monitor.emit("messages.filtered", **where, count=admission.filtered, first_offset=first_offset)

    def report_hold(self, monitor: Monitor, where: dict[str, Any], hold: Hold, offset: int) -> None:
        """The partition waits from ``offset`` until ``hold.until``."""
        if hold.kind == "throttled":
            throttle = self.throttle
            assert throttle is not None
            monitor.emit(
                "partition.throttled",
                **where,
                offset=offset,
                until=hold.until,
                messages=throttle.messages,
                per=throttle.per,
                scope=throttle.scope,
            )
        elif hold.kind == "delayed":
            monitor.emit("partition.delayed", **where, offset=offset, until=hold.until, delay=self.delay)
        else:
            monitor.emit("partition.paused", **where, offset=offset, until=hold.until, reason="filter")


_timestamp = attrgetter("timestamp")


def _all_pass(records: Sequence[Record], expired_before: float | None, due_by: float | None) -> bool:
    """Whether no record is expired nor undue: the usual batch, told apart from the others by
    the timestamps' extremes (read in C) instead of a decision per record."""
    if due_by is None:
        return expired_before is None or bool(min(map(_timestamp, records)) >= expired_before)
    if expired_before is None:
        return bool(max(map(_timestamp, records)) <= due_by)
    stamps = list(map(_timestamp, records))
    return bool(min(stamps) >= expired_before and max(stamps) <= due_by)


def holds_back(route: Route) -> bool:
    """Whether ``route`` has any of the options that hold messages back from its handler."""
    return not (
        route.filter is None and route.throttle is None and route.expire_after is None and route.delay is None
    )


def flow_of(route: Route, clock: Clock, *, cluster: str, decoder: Decoder | None) -> Flow | None:
    """The route's ``Flow``, or None when it holds nothing back (decided once per route)."""
    if not holds_back(route):
        return None
    return Flow(route, clock, cluster=cluster, decoder=decoder)


def flow_settings(route: Route) -> dict[str, Any] | None:
    """What ``route`` holds back from its handler, as plain data (``info``, the Web UI); None
    when nothing."""
    if not holds_back(route):
        return None
    throttle = route.throttle
    return {
        "filter": callable_name(route.filter) if route.filter is not None else None,
        "throttle": (
            {"messages": throttle.messages, "per": throttle.per, "scope": throttle.scope}
            if throttle is not None
            else None
        ),
        "expire_after": route.expire_after,
        "delay": route.delay,
    }


def describe_flow(settings: dict[str, Any] | None) -> str:
    """``flow_settings`` in a few words, for a table cell."""
    if settings is None:
        return ""
    parts = []
    if settings["expire_after"] is not None:
        parts.append(f"expire after {settings['expire_after']:g}s")
    if settings["delay"] is not None:
        parts.append(f"delay {settings['delay']:g}s")
    if settings["filter"] is not None:
        parts.append(f"filter {settings['filter']}")
    throttle = settings["throttle"]
    if throttle is not None:
        parts.append(f"at most {throttle['messages']} per {throttle['per']:g}s per {throttle['scope']}")
    return "; ".join(parts)
