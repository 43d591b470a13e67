"""Cron expressions: the ticks they name, in UTC, and the errors that name the bad field."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from aiostream_kafka.jobs.cron import Cron, CronError


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def ticks(expression: str, start: str, count: int) -> list[str]:
    cron, t, found = Cron.parse(expression), at(start), []
    for _ in range(count):
        t = cron.next_after(t)
        found.append(datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M %a"))
    return found


def test_every_five_minutes_starts_from_the_next_multiple_of_five() -> None:
    assert ticks("*/5 * * * *", "2026-01-01 10:03:59", 3) == [
        "2026-01-01 10:05 Thu",
        "2026-01-01 10:10 Thu",
        "2026-01-01 10:15 Thu",
    ]


def test_the_next_tick_is_strictly_after_the_given_time() -> None:
    assert ticks("*/5 * * * *", "2026-01-01 10:05:00", 1) == ["2026-01-01 10:10 Thu"]


def test_a_daily_tick_crosses_the_end_of_a_month_and_of_a_year() -> None:
    assert ticks("30 23 * * *", "2026-12-30 23:31", 3) == [
        "2026-12-31 23:30 Thu",
        "2027-01-01 23:30 Fri",
        "2027-01-02 23:30 Sat",
    ]


def test_the_31st_skips_the_months_that_have_no_31st() -> None:
    assert ticks("0 0 31 * *", "2026-01-31 00:00", 3) == [
        "2026-03-31 00:00 Tue",
        "2026-05-31 00:00 Sun",
        "2026-07-31 00:00 Fri",
    ]


def test_february_29th_waits_for_a_leap_year() -> None:
    assert ticks("0 12 29 2 *", "2026-03-01 00:00", 2) == ["2028-02-29 12:00 Tue", "2032-02-29 12:00 Sun"]


def test_lists_ranges_steps_and_names() -> None:
    assert ticks("0,30 9-17/4 * jan-mar mon-fri", "2026-03-27 16:00", 4) == [
        "2026-03-27 17:00 Fri",
        "2026-03-27 17:30 Fri",
        "2026-03-30 09:00 Mon",
        "2026-03-30 09:30 Mon",
    ]
    assert ticks("5/20 0 1 * *", "2026-01-01 00:00", 3) == [
        "2026-01-01 00:05 Thu",
        "2026-01-01 00:25 Thu",
        "2026-01-01 00:45 Thu",
    ]


def test_sunday_is_0_or_7() -> None:
    assert ticks("0 0 * * 7", "2026-01-01 00:00", 1) == ticks("0 0 * * sun", "2026-01-01 00:00", 1)
    assert ticks("0 0 * * 0", "2026-01-01 00:00", 1) == ["2026-01-04 00:00 Sun"]


def test_both_day_fields_restricted_means_either_day_as_in_cron() -> None:
    # the 1st (a Sunday), and every Monday
    assert ticks("0 0 1 * mon", "2026-01-31 00:00", 4) == [
        "2026-02-01 00:00 Sun",
        "2026-02-02 00:00 Mon",
        "2026-02-09 00:00 Mon",
        "2026-02-16 00:00 Mon",
    ]
    # a star in one day field: only the other one counts (the 1st, 11th, 21st, 31st that is a Friday)
    assert ticks("0 0 */10 * fri", "2026-02-01 00:00", 1) == ["2026-05-01 00:00 Fri"]
    assert ticks("0 0 * * fri", "2026-02-01 00:00", 1) == ["2026-02-06 00:00 Fri"]


@pytest.mark.parametrize(
    ("alias", "expression"),
    [("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0"), ("@yearly", "0 0 1 1 *")],
)
def test_aliases_are_their_expressions(alias: str, expression: str) -> None:
    assert ticks(alias, "2026-05-05 05:05", 3) == ticks(expression, "2026-05-05 05:05", 3)


def test_due_is_the_latest_tick_since_the_last_and_how_many_it_stands_for() -> None:
    cron = Cron.parse("*/5 * * * *")
    assert cron.due(at("2026-01-01 10:00"), at("2026-01-01 10:04:59")) is None
    assert cron.due(at("2026-01-01 10:00"), at("2026-01-01 10:05")) == (at("2026-01-01 10:05"), 0)
    # down from 10:02 to 10:31: 10:05 ... 10:30 were due; one run, for 10:30, standing for five missed
    assert cron.due(at("2026-01-01 10:00"), at("2026-01-01 10:31")) == (at("2026-01-01 10:30"), 5)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("* * * *", "4 field(s) where cron has 5"),
        ("60 * * * *", "minute field: 60 is out of range (0-59)"),
        ("* 24 * * *", "hour field: 24 is out of range (0-23)"),
        ("* * 0 * *", "day-of-month field: 0 is out of range (1-31)"),
        ("* * * 13 *", "month field: 13 is out of range (1-12)"),
        ("* * * * 8", "day-of-week field: 8 is out of range (0-7)"),
        ("* * * foo *", "month field: 'foo' is not a number"),
        ("*/0 * * * *", "minute field: the step in '*/0' must be a whole number above 0"),
        ("5-1 * * * *", "minute field: the range '5-1' runs backwards"),
        ("1,,2 * * * *", "minute field: '' is empty"),
        ("0 0 30 2 *", "day-of-month field: '30' never falls in month(s) '2'"),
        ("@reboot", "unknown alias '@reboot'"),
    ],
)
def test_a_bad_expression_names_the_field(expression: str, says: str) -> None:
    with pytest.raises(CronError, match=None) as raised:
        Cron.parse(expression)
    assert says in str(raised.value)
