"""Virtual partitions under the testing harness: a partition's batch split by key and handled
concurrently, order kept per key, commits of the done prefix, failures per virtual partition."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from aiostream_kafka import (
    App,
    Consumer,
    DeadLetterQueue,
    Message,
    Messages,
    ProcessingTimeoutError,
    Retry,
    VirtualPartitionKeyError,
    VirtualPartitions,
)
from aiostream_kafka.errors import ConfigError
from tests.helpers import within

FAST = Retry(initial=0.5, maximum=0.5, jitter=0)


class Order(msgspec.Struct):
    id: int
    customer: str


def shop(**options: Any) -> App:
    return App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False, **options)


def parity(message: Message[Any]) -> int:
    """A key putting even offsets in one virtual partition and odd in the other, so a test can
    tell from an offset which partition its message went to."""
    return message.offset % 2


async def test_a_batch_is_split_by_key_into_virtual_partitions_handled_at_once() -> None:
    app = shop()
    started: list[list[bytes | None]] = []
    everyone_started = anyio.Event()

    def number(message: Message[Any]) -> int:
        return int(message.key or b"0")  # 0..7: two keys to each of the four

    @app.route("orders", virtual_partitions=VirtualPartitions(concurrency=4, key=number))
    async def handle(messages: Messages[bytes]) -> None:
        started.append([m.key for m in messages])
        if len(started) == 4:
            everyone_started.set()
        await everyone_started.wait()  # returns only if all four run at the same time

    async with app.testing() as t:
        memory = t.clusters["primary"]
        for i in range(40):
            memory.append("orders", f"v{i}".encode(), key=str(i % 8).encode(), partition=0, timestamp_ms=0)
        with within(10, "four virtual partitions at once"):
            await t.drain()

    assert len(started) == 4
    keys_of = [set(keys) for keys in started]
    assert sum(len(keys) for keys in started) == 40
    for one in keys_of:  # a key is in one virtual partition only
        assert all(one.isdisjoint(other) for other in keys_of if other is not one)
    assert t.committed("orders") == 40
    [received] = t.events.named("batch.received")
    assert received["virtual_partitions"] == 4
    assert t.events.named("batch.processed")[0]["virtual_partitions"] == 4


async def test_each_key_keeps_its_order_and_keyless_messages_spread_by_offset() -> None:
    app = shop()
    seen: dict[bytes | None, list[int]] = defaultdict(list)
    batches: list[list[int]] = []

    @app.route("orders", virtual_partitions=VirtualPartitions(concurrency=3))
    async def handle(messages: Messages[bytes]) -> None:
        batches.append([m.offset for m in messages])
        for message in messages:
            seen[message.key].append(int(message.value or b"0"))
            await anyio.lowlevel.checkpoint()  # let the other virtual partitions interleave

    async with app.testing() as t:
        await t.feed("orders", [str(i).encode() for i in range(30)], key="same")
        await t.feed("orders", [str(i).encode() for i in range(30, 36)])  # no key

    assert seen[b"same"] == list(range(30))
    assert sorted(seen[None]) == list(range(30, 36))
    keyless = [batch for batch in batches if batch and batch[0] >= 30]
    assert sorted(sorted(b) for b in keyless) == [[30, 33], [31, 34], [32, 35]]  # offset % 3
    assert all(batch == sorted(batch) for batch in batches)


async def test_a_key_function_chooses_what_keeps_order() -> None:
    app = shop()
    by_customer: dict[str, list[int]] = defaultdict(list)
    calls: list[set[str]] = []

    def customer(message: Message[Order]) -> Hashable:
        return message.payload.customer

    @app.route("orders", payload=Order, virtual_partitions=VirtualPartitions(concurrency=8, key=customer))
    async def handle(messages: Messages[Order]) -> None:
        calls.append({m.payload.customer for m in messages})
        for message in messages:
            by_customer[message.payload.customer].append(message.payload.id)
            await anyio.lowlevel.checkpoint()

    async with app.testing() as t:
        await t.feed("orders", [Order(i, f"c{i % 5}") for i in range(50)])

    assert by_customer == {f"c{c}": list(range(c, 50, 5)) for c in range(5)}
    for one in calls:
        assert all(one.isdisjoint(other) for other in calls if other is not one)


async def test_a_failing_virtual_partition_is_retried_alone_and_the_commit_stops_at_its_message() -> None:
    app = shop()
    handled: dict[int, int] = defaultdict(int)
    attempts: list[int] = []
    broken = {"on": True}

    @app.route("orders", retry=FAST, virtual_partitions=VirtualPartitions(concurrency=2, key=parity))
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.offset == 3 and broken["on"]:
                attempts.append(messages.attempt)
                if len(attempts) == 3:
                    broken["on"] = False  # it works on the next attempt
                raise RuntimeError("the odd one is down")
            handled[message.offset] += 1
            messages.mark_as_consumed(message)  # so that a retry starts at the failing message

    async with app.testing(attempts=5) as t:
        await t.feed("orders", [b"x"] * 10)

    assert attempts == [1, 2, 3]
    assert handled == dict.fromkeys(range(10), 1)  # the even ones were not done again
    assert t.committed("orders") == 10
    failed = t.events.named("batch.failed")
    assert [(e["offset"], e["virtual_partition"], e["attempt"]) for e in failed] == [
        (3, 1, 1),
        (3, 1, 2),
        (3, 1, 3),
    ]
    committed = [e["offsets"]["orders/0"] for e in t.events.named("offsets.committed")]
    assert committed[0] == 3  # the prefix before the failing message, not the even ones' 8
    assert [e["attempt"] for e in t.events.named("retry.scheduled")] == [2, 3, 4]


async def test_after_its_retries_a_virtual_partitions_first_unprocessed_message_goes_to_the_dlq() -> None:
    app = shop()
    handled: list[int] = []

    @app.route(
        "orders",
        retry=FAST,
        dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=1),
        virtual_partitions=VirtualPartitions(concurrency=2, key=parity),
    )
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value == b"bad":
                raise ValueError("cannot handle bad")
            handled.append(message.offset)
            messages.mark_as_consumed(message)

    async with app.testing() as t:
        await t.feed("orders", [b"ok", b"ok", b"ok", b"bad", b"ok", b"ok", b"ok", b"ok"])

    [dead] = t.dead_lettered("orders")
    assert (dead.source_offset, dead.value, dead.attempts) == (3, b"bad", 2)
    assert sorted(handled) == [0, 1, 2, 4, 5, 6, 7]  # each once: the odd ones after 3 came again alone
    assert t.committed("orders") == 8
    [dispatched] = t.events.named("dlq.dispatched")
    assert (dispatched["offset"], dispatched["virtual_partition"]) == (3, 1)


async def test_a_key_function_that_raises_fails_its_message_naming_the_route_and_the_function() -> None:
    app = shop()
    handled: list[int] = []

    def customer(message: Message[Order]) -> Hashable:
        if message.payload.id == 2:
            raise LookupError("no customer")
        return message.payload.customer

    @app.route(
        "orders",
        payload=Order,
        dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=0),
        virtual_partitions=VirtualPartitions(concurrency=4, key=customer),
    )
    async def handle(messages: Messages[Order]) -> None:
        handled.extend(m.payload.id for m in messages)

    async with app.testing() as t:
        await t.feed("orders", [Order(i, f"c{i}") for i in range(5)])

    assert sorted(handled) == [0, 1, 3, 4]
    [dead] = t.dead_lettered("orders")
    assert dead.source_offset == 2
    assert dead.error_type == "aiostream_kafka.errors.VirtualPartitionKeyError"
    [failed] = t.events.named("batch.failed")
    error = failed["error"]
    assert isinstance(error, VirtualPartitionKeyError)
    assert "route for topic 'orders'" in str(error)
    assert "test_virtual_partitions:test_a_key_function_that_raises" in str(error)
    assert "offset 2" in str(error)
    assert isinstance(error.__cause__, LookupError)
    assert failed["virtual_partition"] is None
    assert t.committed("orders") == 5


async def test_marks_count_for_their_own_virtual_partition_only() -> None:
    app = shop()
    refused: list[str] = []
    rounds: list[list[int]] = []

    @app.route(
        "orders",
        manual_offset_management=True,
        virtual_partitions=VirtualPartitions(concurrency=2, key=parity),
    )
    async def handle(messages: Messages[bytes]) -> None:
        rounds.append([m.offset for m in messages])
        if messages[0].offset % 2 == 0:
            messages.mark_as_consumed(messages[-1])  # the even ones: all done
            try:
                messages.mark_as_consumed(Message("orders", 0, 1, None, b"x"))
            except ValueError as error:
                refused.append(str(error))
        else:
            messages.mark_as_consumed(messages[0])  # the odd ones: only offset 1

    async with app.testing() as t:
        await t.feed("orders", [b"x"] * 6)

    assert t.committed("orders") == 3  # 0, 1, 2 done; 3 (odd, unmarked) holds the commit
    [refusal] = refused
    assert "another virtual partition" in refusal


async def test_a_consumer_class_marks_reach_the_virtual_partition_holding_the_message() -> None:
    app = shop()

    class Marking(Consumer):
        async def consume(self, messages: Messages[Any]) -> None:
            for message in messages:
                if message.offset < 4 or message.offset % 3 != 1:  # 4 and 7 are left unmarked
                    self.mark_as_consumed(message)

    app.routes.topic(
        "orders",
        consumer=Marking,
        manual_offset_management=True,
        virtual_partitions=VirtualPartitions(concurrency=3),
    )
    async with app.testing() as t:
        await t.feed("orders", [b"x"] * 9)  # keyless: by offset % 3, so 1, 4, 7 are one

    assert t.committed("orders") == 4


async def test_a_pause_asked_in_a_virtual_partition_pauses_the_partition_after_the_batch() -> None:
    app = shop()
    batches: list[list[int]] = []

    @app.route("orders", max_messages=4, virtual_partitions=VirtualPartitions(concurrency=2))
    async def handle(messages: Messages[bytes]) -> None:
        batches.append([m.offset for m in messages])
        if messages[0].offset == 1:
            messages.pause(duration=60)

    async with app.testing() as t:
        await t.feed("orders", [b"x"] * 8)
        first = sorted(batches)
        assert t.committed("orders") == 8
    assert first[:2] == [[0, 2], [1, 3]]
    resumed = [e for e in t.events.named("batch.received") if e["first_offset"] == 4]
    assert len(resumed) == 1


def test_virtual_partitions_are_refused_with_exactly_once_naming_the_route() -> None:
    app = shop()

    async def handle(messages: Messages[bytes]) -> None: ...

    says = r"route for topic 'orders': exactly_once=True .* virtual partitions"
    with pytest.raises(ConfigError, match=says):
        app.routes.topic("orders", handler=handle, exactly_once=True, virtual_partitions=VirtualPartitions())


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: VirtualPartitions(concurrency=0), r"\(concurrency=0\): .* whole number >= 1"),
        (lambda: VirtualPartitions(concurrency=True), r"concurrency=True"),
        (
            lambda: VirtualPartitions(key="customer"),  # type: ignore[arg-type]
            r"\(key='customer'\): a function of a Message",
        ),
    ],
)
def test_a_bad_virtual_partitions_declaration_says_what_to_fix(make: Any, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        make()


def test_an_async_key_function_is_refused() -> None:
    async def customer(message: Message[Any]) -> str:
        return "c"

    with pytest.raises(ConfigError, match="make it a plain def"):
        VirtualPartitions(key=customer)  # type: ignore[arg-type]


def test_the_route_option_takes_only_a_virtual_partitions() -> None:
    app = shop()

    async def handle(messages: Messages[bytes]) -> None: ...

    with pytest.raises(ConfigError, match=r"virtual_partitions= takes aiostream_kafka\.VirtualPartitions"):
        app.routes.topic("orders", handler=handle, virtual_partitions=10)  # type: ignore[arg-type]


async def test_processing_timeout_bounds_each_virtual_partitions_call() -> None:
    app = shop()
    handled: list[int] = []

    @app.route(
        "orders",
        processing_timeout=0.05,
        dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=0),
        virtual_partitions=VirtualPartitions(concurrency=2, key=parity),
    )
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value == b"hang":
                await anyio.sleep_forever()
            handled.append(message.offset)
            messages.mark_as_consumed(message)

    async with app.testing() as t:
        await t.feed("orders", [b"ok", b"ok", b"ok", b"hang", b"ok", b"ok"])

    assert sorted(handled) == [0, 1, 2, 4, 5]
    [failed] = t.events.named("batch.failed")
    assert isinstance(failed["error"], ProcessingTimeoutError)
    assert "(virtual partition 1)" in str(failed["error"])
    assert [letter.source_offset for letter in t.dead_lettered("orders")] == [3]
    assert t.committed("orders") == 6


async def test_a_key_that_cannot_be_hashed_fails_its_message_saying_what_a_key_must_be() -> None:
    app = shop()

    def tags(message: Message[Any]) -> Any:
        return [message.offset]  # a list: unhashable

    @app.route(
        "orders",
        dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=0),
        virtual_partitions=VirtualPartitions(concurrency=2, key=tags),
    )
    async def handle(messages: Messages[bytes]) -> None: ...

    async with app.testing() as t:
        await t.feed("orders", [b"x"])

    [failed] = t.events.named("batch.failed")
    assert "must return something hashable, or None" in str(failed["error"])
    assert isinstance(failed["error"].__cause__, TypeError)
    assert [letter.source_offset for letter in t.dead_lettered("orders")] == [0]


async def test_what_a_routes_filter_skips_counts_as_done_in_the_virtual_partitions_prefix() -> None:
    app = shop()
    handled: list[int] = []

    def even(message: Message[Any]) -> bool:
        return message.offset % 2 == 0

    @app.route("orders", filter=even, virtual_partitions=VirtualPartitions(concurrency=3))
    async def handle(messages: Messages[bytes]) -> None:
        handled.extend(m.offset for m in messages)

    async with app.testing() as t:
        await t.feed("orders", [b"x"] * 10)

    assert sorted(handled) == [0, 2, 4, 6, 8]
    assert t.committed("orders") == 10  # past the skipped odd ones too
    assert [e["count"] for e in t.events.named("messages.filtered")] == [5]
