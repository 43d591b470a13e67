"""Cron expressions: which minutes (UTC) a recurring job is due at.

Ours rather than a library's: cronsim needs Python 3.11 and croniter has changed hands;
the five standard fields fit in this module. Vixie cron's rules, in UTC: minute, hour,
day of month, month, day of week (0 or 7 is Sunday); ``*``, lists, ranges, steps
(``*/15``, ``1-30/2``, ``5/10`` = from 5 to the end by 10), month and day names
(``jan``, ``mon``), and the ``@hourly``-style aliases. When both day fields are
restricted (neither starts with ``*``), a day matches either of them, as in cron.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: The most days each month can have (February in a leap year).
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: How far ahead a next tick is looked for: February 29th on a given weekday recurs within 28 years.
HORIZON_YEARS = 50


class CronError(ValueError):
    """An expression cron would not accept; the message names the field and what is wrong."""


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_from: int = 0

    def value(self, text: str) -> int:
        word = text.lower()
        if word in self.names:
            return self.names.index(word) + self.names_from
        if not text.isdigit():
            raise CronError(f"{self.name} field: {text!r} is not a number from {self.low} to {self.high}")
        number = int(text)
        if not self.low <= number <= self.high:
            raise CronError(f"{self.name} field: {number} is out of range ({self.low}-{self.high})")
        return number

    def parse(self, text: str) -> frozenset[int]:
        values: set[int] = set()
        for part in text.split(","):
            values.update(self._part(part))
        return frozenset(values)

    def _part(self, part: str) -> range:
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{self.name} field: the step in {part!r} must be a whole number above 0")
            step = int(step_text)
        if span == "*":
            return range(self.low, self.high + 1, step)
        first, dash, last = span.partition("-")
        if not first:
            raise CronError(f"{self.name} field: {part!r} is empty where a value should be")
        low = self.value(first)
        high = self.value(last) if dash else (self.high if slash else low)
        if high < low:
            raise CronError(f"{self.name} field: the range {span!r} runs backwards")
        return range(low, high + 1, step)


FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day-of-month", 1, 31),
    Field("month", 1, 12, MONTHS, 1),
    Field("day-of-week", 0, 7, WEEKDAYS, 0),
)


@dataclass(frozen=True)
class Cron:
    """A parsed expression; ``next_after(t)``: its first tick strictly after ``t`` (epoch seconds)."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    either_day: bool  # both day fields restricted: a day matching either is due

    @classmethod
    def parse(cls, expression: str) -> Cron:
        text = expression.strip()
        if text.startswith("@"):
            if text.lower() not in ALIASES:
                raise CronError(f"unknown alias {text!r} (known: {', '.join(ALIASES)})")
            text = ALIASES[text.lower()]
        parts = text.split()
        if len(parts) != len(FIELDS):
            raise CronError(
                f"{len(parts)} field(s) where cron has 5: minute hour day-of-month month day-of-week"
            )
        minutes, hours, days, months, weekdays = (f.parse(p) for f, p in zip(FIELDS, parts, strict=True))
        days_restricted, weekdays_restricted = not parts[2].startswith("*"), not parts[4].startswith("*")
        if not weekdays_restricted and min(days) > max(MONTH_DAYS[m - 1] for m in months):
            raise CronError(f"day-of-month field: {parts[2]!r} never falls in month(s) {parts[3]!r}")
        return cls(
            expression=expression,
            minutes=tuple(sorted(minutes)),
            hours=tuple(sorted(hours)),
            days=days,
            months=months,
            weekdays=frozenset(day % 7 for day in weekdays),
            either_day=days_restricted and weekdays_restricted,
        )

    def _day_matches(self, moment: datetime) -> bool:
        in_days = moment.day in self.days
        in_weekdays = (moment.weekday() + 1) % 7 in self.weekdays
        return in_days or in_weekdays if self.either_day else in_days and in_weekdays

    def next_after(self, t: float) -> float:
        moment = datetime.fromtimestamp(t, timezone.utc).replace(second=0, microsecond=0)
        moment += timedelta(minutes=1)
        horizon = moment.year + HORIZON_YEARS
        while moment.year <= horizon:
            if moment.month not in self.months:
                year, month = divmod(moment.month, 12)  # the first of next month
                moment = moment.replace(year=moment.year + year, month=month + 1, day=1, hour=0, minute=0)
            elif not self._day_matches(moment):
                moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
            elif moment.hour not in self.hours:
                later = bisect.bisect_right(self.hours, moment.hour)
                if later == len(self.hours):
                    moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
                else:
                    moment = moment.replace(hour=self.hours[later], minute=0)
            elif moment.minute not in self.minutes:
                later = bisect.bisect_right(self.minutes, moment.minute)
                if later == len(self.minutes):
                    moment = moment.replace(minute=0) + timedelta(hours=1)
                else:
                    moment = moment.replace(minute=self.minutes[later])
            else:
                return moment.timestamp()
        raise CronError(f"{self.expression!r} has no tick in the next {HORIZON_YEARS} years")

    def due(self, after: float, now: float) -> tuple[float, int] | None:
        """The latest tick in (``after``, ``now``] and how many earlier ones in that span it
        stands for; None when none is due yet."""
        tick = self.next_after(after)
        if tick > now:
            return None
        skipped = 0
        following = self.next_after(tick)
        while following <= now:
            tick, skipped = following, skipped + 1
            following = self.next_after(tick)
        return tick, skipped
