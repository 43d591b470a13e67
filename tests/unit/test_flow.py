"""Filtering, throttling, expiry and delays under the testing harness: what a route holds back
from its handler, driven by the harness's virtual clock (no real time passes)."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from random import Random
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from aiostream_kafka import (
    App,
    ConfigError,
    Consumer,
    DeadLetterQueue,
    FilterError,
    Message,
    Messages,
    Pause,
    Retry,
    Throttle,
)
from aiostream_kafka.routing.route import Route
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.flow import Budget, Flow


def shop(**kafka: str) -> App:
    """A cluster nobody can reach: the harness must never try."""
    return App("shop", kafka={"bootstrap_servers": "127.0.0.1:1", **kafka}, log_events=False)


def even(message: Message[bytes]) -> bool:
    return int(message.value or b"0") % 2 == 0


# --- filtering -------------------------------------------------------------------------------


async def test_a_filter_skips_messages_and_their_offsets_are_committed_as_done() -> None:
    app = shop()
    seen: list[bytes | None] = []

    @app.route("numbers", filter=even)
    async def on_numbers(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.testing() as t:
        await t.feed("numbers", [b"1", b"2", b"3", b"4", b"5"])

        assert seen == [b"2", b"4"]
        assert t.committed("numbers") == 5  # the skipped 5 included
        [filtered] = t.events.named("messages.filtered")
        assert (filtered["count"], filtered["first_offset"]) == (3, 0)


async def test_a_batch_all_filtered_out_never_reaches_the_handler_but_is_committed() -> None:
    app = shop()
    batches: list[int] = []

    @app.route("numbers", filter=lambda message: False)
    async def on_numbers(messages: Messages[bytes]) -> None:
        batches.append(len(messages))

    async with app.testing() as t:
        await t.feed("numbers", [b"1", b"3"])

        assert batches == []
        assert t.committed("numbers") == 2


async def test_the_handler_gets_the_messages_the_filter_looked_at_decoded_once() -> None:
    app = shop()
    decoded: list[bytes] = []

    def counting(value: bytes) -> dict[str, int]:
        decoded.append(value)
        return {"n": int(value)}

    @app.route("numbers", decoder=counting, filter=lambda m: m.payload["n"] > 1)
    async def on_numbers(messages: Messages[dict[str, int]]) -> None:
        assert [m.payload["n"] for m in messages] == [2, 3]

    async with app.testing() as t:
        await t.feed("numbers", [b"1", b"2", b"3"])

    assert decoded == [b"1", b"2", b"3"]


async def test_a_filter_pause_holds_the_partition_from_that_message_until_the_time() -> None:
    app = shop()
    seen: list[tuple[bytes | None, float]] = []
    opens_at: list[float] = []

    def closed_until_open(message: Message[bytes]) -> bool | Pause:
        if message.value == b"after-hours" and not opens_at:
            opens_at.append(app.clock.now() + 3600)
            return Pause(until=datetime.fromtimestamp(opens_at[0], tz=timezone.utc))
        return True

    @app.route("orders", filter=closed_until_open)
    async def on_orders(messages: Messages[bytes]) -> None:
        seen.extend((m.value, app.clock.now()) for m in messages)

    async with app.testing() as t:
        await t.feed("orders", [b"a", b"after-hours", b"b"])

        assert [value for value, _ in seen] == [b"a", b"after-hours", b"b"]
        assert seen[0][1] < opens_at[0] <= seen[1][1]  # the rest came once the pause was over
        [paused] = t.events.named("partition.paused")
        assert (paused["offset"], paused["reason"]) == (1, "filter")
        assert paused["until"] == pytest.approx(opens_at[0])
        assert t.committed("orders") == 3


async def test_a_filter_that_raises_fails_its_message_which_goes_to_the_dead_letter_queue() -> None:
    app = shop()
    seen: list[bytes | None] = []

    def picky(message: Message[bytes]) -> bool:
        if message.value == b"bad":
            raise ValueError("cannot judge this one")
        return True

    @app.route(
        "numbers",
        filter=picky,
        dead_letter_queue=DeadLetterQueue("numbers.dlq", max_retries=1),
        retry=Retry(initial=5),
    )
    async def on_numbers(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.testing() as t:
        await t.feed("numbers", [b"1", b"bad", b"2"])

        assert seen == [b"1", b"2"]
        [letter] = t.dead_lettered("numbers")
        assert letter.message.value == b"bad"
        assert letter.error_type.endswith("FilterError")
        assert (
            "<locals>.picky raised ValueError: cannot judge this one (topic 'numbers', partition 0, offset 1)"
            in letter.error_message
        )
        assert t.committed("numbers") == 3


async def test_a_filter_returning_something_else_than_a_verdict_names_the_filter() -> None:
    app = shop()

    def forgot_to_return(message: Message[bytes]) -> bool:
        return None  # type: ignore[return-value]

    @app.route("numbers", filter=forgot_to_return)
    async def on_numbers(messages: Messages[bytes]) -> None: ...

    with pytest.raises(FilterError, match=r"forgot_to_return returned None; it must return True"):
        async with app.testing() as t:
            await t.feed("numbers", [b"1"])


# --- throttling ------------------------------------------------------------------------------


async def test_a_throttle_hands_at_most_its_budget_per_interval_pausing_between() -> None:
    app = shop()
    handed: list[tuple[float, int]] = []

    @app.route("mails", throttle=Throttle(messages=3, per=60))
    async def on_mails(messages: Messages[bytes]) -> None:
        handed.append((app.clock.now(), len(messages)))

    async with app.testing() as t:
        await t.feed("mails", [b"m"] * 8)

        assert [count for _, count in handed] == [3, 3, 2]
        starts = [at for at, _ in handed]
        assert starts[1] - starts[0] >= 60
        assert starts[2] - starts[1] >= 60
        throttled = t.events.named("partition.throttled")
        assert [e["offset"] for e in throttled] == [3, 6]
        assert (throttled[0]["messages"], throttled[0]["per"], throttled[0]["scope"]) == (3, 60, "route")
        assert t.committed("mails") == 8


async def test_a_route_throttle_is_one_budget_for_all_its_partitions() -> None:
    app = shop()
    handed: list[tuple[int, int]] = []

    @app.route("mails", throttle=Throttle(messages=2, per=10))
    async def on_mails(messages: Messages[bytes]) -> None:
        handed.append((messages.partition, len(messages)))

    async with app.testing(partitions=2) as t:
        await t.feed("mails", [b"a", b"b"], partition=0)
        await t.feed("mails", [b"c", b"d"], partition=1)
        windows = t.events.named("partition.throttled")

        assert sum(count for _, count in handed) == 4
        assert windows  # the second partition waited for the first one's budget
        assert windows[0]["partition"] == 1


async def test_a_partition_throttle_gives_each_partition_its_own_budget() -> None:
    app = shop()

    @app.route("mails", throttle=Throttle(messages=2, per=10, scope="partition"))
    async def on_mails(messages: Messages[bytes]) -> None: ...

    async with app.testing(partitions=2) as t:
        await t.feed("mails", [b"a", b"b"], partition=0)
        await t.feed("mails", [b"c", b"d"], partition=1)

        assert t.events.named("partition.throttled") == []


# --- expiry ----------------------------------------------------------------------------------


async def test_messages_older_than_expire_after_are_skipped_counted_and_committed() -> None:
    app = shop()
    seen: list[bytes | None] = []

    @app.route("alerts", expire_after=300)
    async def on_alerts(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.testing() as t:
        old = int((app.clock.now() - 301) * 1000)
        await t.feed("alerts", [b"stale-1", b"stale-2"], timestamp_ms=old)
        await t.feed("alerts", [b"fresh"])

        assert seen == [b"fresh"]
        [expired] = t.events.named("messages.expired")
        assert (expired["count"], expired["first_offset"], expired["expire_after"]) == (2, 0, 300)
        assert t.committed("alerts") == 3


# --- delays ----------------------------------------------------------------------------------


async def test_a_delayed_route_hands_a_message_on_only_once_it_is_old_enough() -> None:
    app = shop()
    seen: list[tuple[bytes | None, float]] = []

    @app.route("grace", delay=600)
    async def on_grace(messages: Messages[bytes]) -> None:
        seen.extend((m.value, app.clock.now() - m.timestamp_ms / 1000) for m in messages)

    async with app.testing() as t:
        due = int((app.clock.now() - 700) * 1000)
        await t.feed("grace", [b"due"], timestamp_ms=due)
        await t.feed("grace", [b"young"])

        assert [value for value, _ in seen] == [b"due", b"young"]
        assert all(age >= 600 for _, age in seen)
        [delayed] = t.events.named("partition.delayed")
        assert (delayed["offset"], delayed["delay"]) == (1, 600)
        assert t.committed("grace") == 2


async def test_a_delayed_message_stops_the_batch_and_the_due_ones_before_it_are_processed() -> None:
    app = shop()
    batches: list[list[bytes | None]] = []

    @app.route("grace", delay=60, max_messages=10)
    async def on_grace(messages: Messages[bytes]) -> None:
        batches.append([m.value for m in messages])

    async with app.testing() as t:
        now = app.clock.now()
        memory = t.clusters["primary"]
        for value, age in ((b"a", 120), (b"b", 90), (b"c", 10), (b"d", 100)):
            memory.append("grace", value, timestamp_ms=int((now - age) * 1000), partition=0)
        await t.drain()

        assert batches == [[b"a", b"b"], [b"c", b"d"]]  # d waited behind c: order is kept


# --- together --------------------------------------------------------------------------------


async def test_expiry_filter_and_throttle_apply_together_in_that_order() -> None:
    app = shop()
    seen: list[bytes | None] = []

    @app.route("n", expire_after=60, filter=even, throttle=Throttle(messages=1, per=5))
    async def on_n(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.testing() as t:
        await t.feed("n", [b"0"], timestamp_ms=int((app.clock.now() - 61) * 1000))
        await t.feed("n", [b"1", b"2", b"3", b"4"])

        assert seen == [b"2", b"4"]
        assert len(t.events.named("partition.throttled")) == 1
        assert t.committed("n") == 5


async def test_skipped_messages_of_an_exactly_once_route_commit_in_its_transaction() -> None:
    app = shop(transactional_id="shop")
    seen: list[bytes | None] = []

    @app.route("orders", exactly_once=True, filter=even)
    async def on_orders(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)
        await app.producer.produce("orders.out", b"x")

    async with app.testing() as t:
        await t.feed("orders", [b"1", b"2", b"3"])
        await t.feed("orders", [b"5"])

        assert seen == [b"2"]
        assert t.committed("orders") == 4
        committed = t.events.named("offsets.committed")
        assert all(e.get("transactional") for e in committed)
        assert [e["offsets"] for e in committed] == [{"orders/0": 3}, {"orders/0": 4}]


def test_every_flow_event_is_a_monitor_event() -> None:
    from aiostream_kafka.instrumentation.monitor import EVENTS

    assert {"messages.filtered", "messages.expired", "partition.throttled", "partition.delayed"} <= EVENTS
    assert "partition.paused" in EVENTS


# --- declarations ----------------------------------------------------------------------------


async def noop(messages: Messages[bytes]) -> None: ...


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"filter": "even"}, r"route for topic 'n': filter= takes a function of a Message, not 'even'"),
        (
            {"throttle": 5},
            r"route for topic 'n': throttle= takes aiostream_kafka.Throttle\(messages=, per=\)",
        ),
        ({"expire_after": 0}, r"route for topic 'n': expire_after must be positive seconds or None, not 0"),
        ({"delay": True}, r"route for topic 'n': delay must be positive seconds or None, not True"),
        ({"delay": float("nan")}, r"route for topic 'n': delay must be positive seconds"),
        (
            {"delay": 60, "expire_after": 30},
            r"expire_after=30 is not longer than delay=60, so every message would expire before it is due",
        ),
        ({"filtr": even}, r"route for topic 'n': unknown option 'filtr'; did you mean 'filter'\?"),
    ],
)
def test_flow_options_are_checked_as_the_route_is_declared(options: dict[str, object], error: str) -> None:
    app = shop()

    with pytest.raises(ConfigError, match=error):
        app.routes.topic("n", handler=noop, **options)  # type: ignore[arg-type]


def test_an_async_filter_is_refused_since_it_runs_before_the_handler() -> None:
    async def looks_up(message: Message[bytes]) -> bool:
        return True

    with pytest.raises(ConfigError, match=r"the filter .*looks_up must be a plain def"):
        shop().routes.topic("n", handler=noop, filter=looks_up)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"messages": 0}, r"Throttle\(messages=...\) must be a whole number >= 1, not 0"),
        ({"messages": True}, r"Throttle\(messages=...\) must be a whole number >= 1, not True"),
        ({"messages": 5, "per": 0}, r"Throttle\(per=...\) must be positive seconds, not 0"),
        ({"messages": 5, "scope": "topic"}, r"Throttle\(scope=...\) must be one of 'route', 'partition'"),
    ],
)
def test_a_throttle_is_checked_when_it_is_made(arguments: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        Throttle(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("until", "error"),
    [
        (datetime(2030, 1, 1), r"give a timezone-aware datetime"),
        (-1, r"seconds >= 0 from now"),
        (True, r"seconds >= 0 from now"),
        ("soon", r"seconds >= 0 from now"),
    ],
)
def test_a_pause_needs_an_aware_time_or_seconds(until: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Pause(until=until)  # type: ignore[arg-type]


def test_a_pause_lasts_from_now_until_its_time_never_less_than_nothing() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp()

    assert Pause(until=30).seconds_from(now) == 30
    assert Pause(until=datetime(2030, 1, 1, 0, 1, tzinfo=timezone.utc)).seconds_from(now) == 60
    assert Pause(until=datetime(2029, 1, 1, tzinfo=timezone.utc)).seconds_from(now) == 0


def test_a_throttle_budget_counts_what_was_handed_in_the_last_interval_exactly() -> None:
    budget = Budget(limit=5, per=10.0)

    budget.spend(0.0, 3)
    budget.spend(4.0, 2)

    assert budget.available(9.9) == 0
    assert budget.next_free(9.9) == 10.0  # the 3 of t=0 leave the window then
    assert budget.available(10.0) == 3
    budget.spend(10.0, 3)
    assert budget.available(13.9) == 0
    assert budget.next_free(13.9) == 14.0
    assert budget.available(20.0) == 5


# --- the guide's examples --------------------------------------------------------------------


def guide_examples() -> list[str]:
    """The Python blocks of docs/processing-patterns.md's section on these options."""
    text = (Path(__file__).parents[2] / "docs" / "processing-patterns.md").read_text()
    section = text[text.index("## Filtering, throttling, expiry and delays") :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


async def test_the_guides_app_and_its_test_run_as_written() -> None:
    app_code, test_code = guide_examples()
    namespace: dict[str, Any] = {}
    exec(compile(app_code, "processing-patterns.md", "exec"), namespace)
    app = namespace["app"]
    body = textwrap.indent(test_code, "    ")
    exec(compile(f"async def run(app):\n{body}", "processing-patterns.md", "exec"), namespace)

    await namespace["run"](app)

    flows = {topic.name: topic.route for topic in app.topology.topics}
    assert flows["emails"].throttle == Throttle(messages=100, per=60)
    assert flows["orders.retry"].delay == 300


async def test_expiry_within_one_batch_keeps_order_and_never_expires_a_record_without_timestamp() -> None:
    app = shop()
    seen: list[bytes | None] = []

    @app.route("alerts", expire_after=60, max_messages=10)
    async def on_alerts(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.testing() as t:
        now = app.clock.now()
        memory = t.clusters["primary"]
        for value, stamp in ((b"fresh-1", now), (b"stale", now - 61), (b"no-time", None), (b"fresh-2", now)):
            timestamp_ms = -1 if stamp is None else int(stamp * 1000)
            memory.append("alerts", value, timestamp_ms=timestamp_ms, partition=0)
        await t.drain()

        assert seen == [b"fresh-1", b"no-time", b"fresh-2"]
        assert t.committed("alerts") == 4


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def decided_one_by_one(
    stamps: list[int], now: float, expire_after: float | None, delay: float | None
) -> tuple[list[int], int]:
    """The rule, written plainly: the offsets handed, and where the batch stops."""
    handed: list[int] = []
    for offset, stamp in enumerate(stamps):
        if expire_after is not None and 0 <= stamp < (now - expire_after) * 1000:
            continue
        if delay is not None and stamp > (now - delay) * 1000:
            return handed, offset
        handed.append(offset)
    return handed, len(stamps)


@pytest.mark.parametrize(("expire_after", "delay"), [(60.0, None), (None, 30.0), (60.0, 30.0)])
def test_a_batch_is_decided_as_the_rule_says_one_record_at_a_time(
    expire_after: float | None, delay: float | None
) -> None:
    random = Random(23)
    now = 1_000_000.0

    async def noop(messages: Messages[bytes]) -> None: ...

    flow = Flow(
        Route("t", handler=noop, expire_after=expire_after, delay=delay),
        FixedClock(now),
        cluster="primary",
        decoder=None,
    )
    for _ in range(300):
        stamps = [random.choice([-1, *range(int(now - 90) * 1000, int(now) * 1000, 7_000)]) for _ in range(8)]
        if random.random() < 0.3:  # batches where everything passes, as most do
            stamps = [int((now - 40) * 1000)] * 8 if delay else [int(now * 1000)] * 8
        records = [ConsumerRecord("t", 0, o, s, 0, None, b"", None, 0, 0, []) for o, s in enumerate(stamps)]

        admission = flow.admit(TopicPartition("t", 0), records)

        assert ([r.offset for r in admission.handed], admission.end) == decided_one_by_one(
            stamps, now, expire_after, delay
        )


async def test_a_consumer_class_route_holds_back_as_a_function_route_does() -> None:
    app = shop()
    seen: list[bytes | None] = []

    class Evens(Consumer):
        async def consume(self, messages: Messages[bytes]) -> None:
            seen.extend(m.value for m in messages)

    app.routes.topic("numbers", consumer=Evens, filter=even, throttle=Throttle(messages=1, per=1))
    async with app.testing() as t:
        await t.feed("numbers", [b"1", b"2", b"3", b"4"])

        assert seen == [b"2", b"4"]
        assert len(t.events.named("partition.throttled")) == 1
        assert t.committed("numbers") == 4


async def test_with_manual_offsets_skipped_messages_are_done_once_the_last_handed_one_is_marked() -> None:
    app = shop()

    @app.route("numbers", filter=even, manual_offset_management=True, max_messages=10)
    async def marks_all(messages: Messages[bytes]) -> None:
        messages.mark_as_consumed(messages[-1])

    @app.route("unmarked", filter=even, manual_offset_management=True, max_messages=10)
    async def marks_nothing(messages: Messages[bytes]) -> None: ...

    async with app.testing() as t:
        await t.feed("numbers", [b"2", b"3", b"5"])
        await t.feed("unmarked", [b"2", b"3", b"5"])

        assert t.committed("numbers") == 3  # past the skipped 3 and 5
        assert t.committed("unmarked") is None  # nothing marked: nothing done


async def test_a_payload_the_filter_cannot_decode_goes_to_the_dead_letter_queue_at_once() -> None:
    app = shop()
    seen: list[int] = []

    @app.route(
        "numbers",
        payload=int,
        filter=lambda message: message.payload > 0,
        dead_letter_queue=DeadLetterQueue("numbers.dlq", max_retries=5),
    )
    async def on_numbers(messages: Messages[int]) -> None:
        seen.extend(m.payload for m in messages)

    async with app.testing() as t:
        await t.feed("numbers", [b"1", b"not json", b"2"])

        assert seen == [1, 2]
        [letter] = t.dead_lettered("numbers")
        assert (letter.value, letter.attempts, letter.error_type) == (
            b"not json",
            1,
            "aiostream_kafka.errors.DecodeError",
        )
