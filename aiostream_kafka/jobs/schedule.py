"""What a recurring job's schedule is, and what the schedule topic remembers of it."""

from __future__ import annotations

import uuid

import msgspec

from aiostream_kafka.jobs.cron import Cron


class ScheduleRecord(msgspec.Struct, frozen=True):
    """The schedule topic's record of one job (keyed by its name; the topic is compacted).

    ``since``: when a scheduler first saw the job, so that a tick after it is due even if the
    scheduler that saw it died before the tick. ``last_tick``: the tick last enqueued (epoch
    seconds, None before the first), enqueued as ``envelope_id``, standing for ``missed`` more.
    """

    job: str
    schedule: str
    since: float
    last_tick: float | None = None
    missed: int = 0
    envelope_id: str | None = None

    @property
    def after(self) -> float:
        """The next due tick is the first one after this."""
        return self.last_tick if self.last_tick is not None else self.since


class Schedule:
    """A job's cron expression, parsed once at declaration."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.cron = Cron.parse(expression)

    def next_tick(self, after: float) -> float:
        return self.cron.next_after(after)

    def due(self, record: ScheduleRecord, now: float) -> tuple[float, int] | None:
        """The tick to enqueue now and how many missed ticks it stands for, or None."""
        return self.cron.due(record.after, now)

    def __repr__(self) -> str:
        return f"<Schedule {self.expression!r} UTC>"


def tick_id(job: str, tick: float) -> str:
    """The envelope id of ``job``'s run for ``tick``: the same wherever and however often it is
    made, so that a worker can tell a redelivered run from another tick's."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"aiostream-kafka:schedule:{job}:{tick:.0f}").hex
