"""How many batches an exactly-once transaction covers, and what a failure then repeats: a
partition's batches of one poll share one transaction, which commits after the last of
them (or after a pause or seek, or once it has been open for ``TRANSACTION_SPAN``); an
abort sends every batch it covered round again, and attempts count until it commits."""

from __future__ import annotations

import asyncio

import anyio

from aiostream_kafka import App, DeadLetterQueue, Messages, Retry
from aiostream_kafka.runtime.exactly_once import TRANSACTION_BATCHES, TRANSACTION_SPAN
from aiostream_kafka.testing.harness import TestApp


def shop() -> App:
    return App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False)


def committed_offsets(t: TestApp) -> list[int]:
    return [e["offset"] for e in t.events.named("transaction.committed")]


def after(t: TestApp, name: str) -> list[str]:
    """The names of the events from the first ``name`` on, of the kinds these tests follow."""
    followed = ("transaction.", "batch.processed", "batch.failed")
    names = [e.name for e in t.events if e.name.startswith(followed)]
    return names[names.index(name) :]


async def test_the_batches_of_one_poll_commit_in_one_transaction_then_are_reported_processed() -> None:
    app = shop()

    @app.route("orders", exactly_once=True, max_messages=4)
    async def invoice(messages: Messages[bytes]) -> None:
        for message in messages:
            await app.producer.produce("invoices", message.value)

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(10)])

        assert committed_offsets(t) == [10]
        assert [e["first_offset"] for e in t.events.named("batch.received")] == [0, 4, 8]
        assert after(t, "transaction.committed") == ["transaction.committed", *["batch.processed"] * 3]
        assert len(t.produced("invoices")) == 10
        assert t.committed("orders") == 10


async def test_max_poll_records_of_one_batch_gives_each_batch_its_own_transaction() -> None:
    app = shop()

    @app.route("orders", exactly_once=True, max_messages=4, max_poll_records=4)
    async def invoice(messages: Messages[bytes]) -> None:
        await app.producer.produce("invoices", b"%d" % len(messages))

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(10)])

        assert committed_offsets(t) == [4, 8, 10]


async def test_a_transaction_open_for_its_span_commits_after_the_batch_in_hand() -> None:
    app = shop()
    batches = 0

    @app.route("orders", exactly_once=True, max_messages=2)
    async def slow(messages: Messages[bytes]) -> None:
        nonlocal batches
        batches += 1
        t.clock.advance(TRANSACTION_SPAN * 0.6)  # each batch takes 0.6 of the span

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(6)])

        assert batches == 3
        assert committed_offsets(t) == [4, 6]  # the second batch took it past the span


async def test_a_pause_asked_for_by_a_batch_commits_its_transaction_first() -> None:
    app = shop()

    @app.route("orders", exactly_once=True, max_messages=2)
    async def pausing(messages: Messages[bytes]) -> None:
        await app.producer.produce("invoices", messages[0].value)
        if messages.first_offset == 2:
            messages.pause(duration=5)

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(6)])

        assert committed_offsets(t) == [4, 6]  # the pause came with the second batch
        assert [m.value for m in t.produced("invoices")] == [b"0", b"2", b"4"]


async def test_a_failure_in_a_later_batch_aborts_the_earlier_ones_too_and_the_retry_runs_them_again() -> None:
    app = shop()
    seen: list[tuple[int, int]] = []  # (first offset, attempt) of every batch handed over

    @app.route("orders", exactly_once=True, max_messages=2, retry=Retry(initial=1, maximum=1))
    async def invoice(messages: Messages[bytes]) -> None:
        seen.append((messages.first_offset, messages.attempt))
        for message in messages:
            await app.producer.produce("invoices", message.value)
        if messages.first_offset == 2 and messages.attempt == 1:
            raise RuntimeError("the second batch fails once")

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(6)])

        assert seen == [(0, 1), (2, 1), (0, 2), (2, 2), (4, 2)]  # the attempt is the transaction's
        assert [m.value for m in t.produced("invoices")] == [b"%d" % i for i in range(6)]
        assert [m.value for m in t.aborted("invoices")] == [b"0", b"1", b"2", b"3"]
        [failed] = t.events.named("batch.failed")
        assert (failed["offset"], failed["attempt"]) == (2, 1)
        [retry] = t.events.named("retry.scheduled")
        assert retry["offset"] == 0  # from the transaction's first offset
        assert committed_offsets(t) == [6]
        assert [e["attempt"] for e in t.events.named("batch.processed")] == [2, 2, 2]


async def test_a_batch_that_keeps_failing_after_an_earlier_one_dead_letters_its_own_first_message() -> None:
    app = shop()
    seen: list[tuple[int, int]] = []

    @app.route(
        "orders",
        exactly_once=True,
        max_messages=2,
        retry=Retry(initial=1, maximum=1),
        dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=1),
    )
    async def invoice(messages: Messages[bytes]) -> None:
        seen.append((messages.first_offset, messages.attempt))
        for message in messages:
            if message.value == b"bad":
                raise ValueError("bad input")
            await app.producer.produce("invoices", message.value)

    async with app.testing() as t:
        await t.feed("orders", [b"ok-0", b"ok-1", b"bad", b"ok-3"])

        # Twice (1 + max_retries) through both batches, then once more without the culprit,
        # whose dead letter is written in the transaction of that last round.
        assert seen == [(0, 1), (2, 1), (0, 2), (2, 2), (0, 1), (3, 1)]
        assert [letter.value for letter in t.dead_lettered("orders")] == [b"bad"]
        assert [m.value for m in t.produced("invoices")] == [b"ok-0", b"ok-1", b"ok-3"]
        assert committed_offsets(t) == [4]
        assert t.committed("orders") == 4


async def test_a_transaction_covers_at_most_transaction_batches_batches() -> None:
    app = shop()

    @app.route("orders", exactly_once=True, max_messages=1, max_poll_records=TRANSACTION_BATCHES + 4)
    async def invoice(messages: Messages[bytes]) -> None:
        await app.producer.produce("invoices", messages[0].value)

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(TRANSACTION_BATCHES + 4)])

        assert committed_offsets(t) == [TRANSACTION_BATCHES, TRANSACTION_BATCHES + 4]


async def test_a_stop_commits_the_batches_done_and_leaves_the_rest_of_the_poll_uncommitted() -> None:
    app = shop()
    seen: list[int] = []
    stopping: list[asyncio.Future[None]] = []
    asked = anyio.Event()
    app.monitor.subscribe("app.stopping", lambda event: asked.set())

    @app.route("orders", exactly_once=True, max_messages=2)
    async def invoice(messages: Messages[bytes]) -> None:
        seen.append(messages.first_offset)
        await app.producer.produce("invoices", messages[0].value)
        if messages.first_offset == 2:
            stopping.append(asyncio.ensure_future(app.stop()))  # as a SIGTERM would, mid-poll
            await asked.wait()

    async with app.testing() as t:
        await t.feed("orders", [b"%d" % i for i in range(10)])
        await stopping[0]

        assert seen == [0, 2]  # the batch in hand finished; the poll's others were left
        assert committed_offsets(t) == [4]
        assert t.committed("orders") == 4
        assert [m.value for m in t.produced("invoices")] == [b"0", b"2"]


async def test_a_backlog_s_partitions_take_turns_in_the_polls_of_an_exactly_once_group() -> None:
    app = App("shop", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False, concurrency=2)
    polls: list[list[int]] = []  # the partitions of each poll, in the order their batches began

    @app.route("orders", exactly_once=True, max_messages=1, max_poll_records=1)
    async def invoice(messages: Messages[bytes]) -> None:
        if not polls or len(polls[-1]) == 2:
            polls.append([])
        polls[-1].append(messages.partition)

    async with app.testing(partitions=6) as t:
        await t.feed("orders", [b"x"] * 18)  # round robin: 3 a partition, all there before the first poll

    # Each poll takes the partitions that waited longest: all 6 have begun within 3 polls
    # (of 2 slots each), none waiting for another's backlog to end.
    assert {partition for poll in polls[:3] for partition in poll} == set(range(6))
