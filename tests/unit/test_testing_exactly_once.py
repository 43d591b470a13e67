"""Exactly-once routes and producer transactions in the testing harness: what commits is
produced, what aborts is not (``t.aborted`` shows it), as read-committed readers see Kafka."""

from __future__ import annotations

import msgspec
import pytest

from aiostream_kafka import (
    App,
    CrossClusterTransactionError,
    DeadLetterQueue,
    Messages,
    Retry,
    TransactionError,
)
from aiostream_kafka.producing.producer import Producer


def shop(**kafka: object) -> App:
    """Two clusters nobody can reach: the harness must never try."""
    return App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:1", **kafka},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:2"}},
        log_events=False,
    )


async def test_an_exactly_once_batch_commits_its_produces_and_its_offsets_together() -> None:
    app = shop()

    @app.route("orders", exactly_once=True)
    async def invoice(messages: Messages[bytes]) -> None:
        for message in messages:
            await app.producer.produce("invoices", message.value)

    async with app.testing() as t:
        await t.feed("orders", [b"a", b"b", b"c"])

        assert [m.value for m in t.produced("invoices")] == [b"a", b"b", b"c"]
        assert t.committed("orders") == 3
        [committed] = t.events.named("transaction.committed")
        assert (committed["topic"], committed["partition"], committed["offset"]) == ("orders", 0, 3)
        assert committed["transactional_id"] == "shop.shop.orders.0"


async def test_a_failed_exactly_once_batch_is_aborted_and_its_retry_produces_once() -> None:
    app = shop()

    @app.route("orders", exactly_once=True, retry=Retry(initial=1, maximum=1))
    async def invoice(messages: Messages[bytes]) -> None:
        await app.producer.produce("invoices", b"attempt %d" % messages.attempt)
        if messages.attempt == 1:
            raise RuntimeError("the first attempt fails after producing")

    async with app.testing() as t:
        await t.feed("orders", [b"a"])

        assert [m.value for m in t.produced("invoices")] == [b"attempt 2"]
        assert [m.value for m in t.aborted("invoices")] == [b"attempt 1"]
        assert [e.name for e in t.events if e.name.startswith("transaction.")] == [
            "transaction.begun",
            "transaction.aborted",
            "transaction.begun",
            "transaction.committed",
        ]
        assert t.committed("orders") == 1


async def test_an_exactly_once_route_reads_past_an_open_transaction_only_once_it_commits() -> None:
    app = shop(transactional_id="upstream-1")
    seen: list[bytes | None] = []

    @app.route("orders")
    async def read(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.testing() as t:
        async with app.producer.transaction():
            await app.producer.produce("orders", b"in the transaction")
            await t.drain()
            assert seen == []  # read committed: not yet
        await t.drain()
        assert seen == [b"in the transaction"]


async def test_a_produce_to_another_cluster_inside_an_exactly_once_batch_is_refused() -> None:
    app = shop()

    @app.route("orders", exactly_once=True)
    async def invoice(messages: Messages[bytes]) -> None:
        await app.producers["analytics"].produce("invoices", b"x")

    async with app.testing(attempts=1) as t:
        with pytest.raises(CrossClusterTransactionError, match=r"cluster 'primary'.*cluster 'analytics'"):
            await t.feed("orders", [b"a"])


async def test_a_producer_transaction_that_raises_is_aborted_and_one_that_returns_is_produced() -> None:
    app = shop(transactional_id="ledger-1")
    async with app.testing() as t:
        async with app.producer.transaction():
            await app.producer.produce("ledger", b"kept")
        with pytest.raises(RuntimeError, match="changed my mind"):
            await abandoned(app)
        assert [m.value for m in t.produced("ledger")] == [b"kept"]
        assert [m.value for m in t.aborted("ledger")] == [b"dropped"]


async def abandoned(app: App) -> None:
    async with app.producer.transaction():
        await app.producer.produce("ledger", b"dropped")
        raise RuntimeError("changed my mind")


async def test_a_newer_producer_of_the_same_transactional_id_fences_the_older_in_memory() -> None:
    app = shop(transactional_id="ledger-1")
    async with app.testing():
        cluster = app.topology.clusters["primary"]
        newer = Producer(cluster, app.monitor, client_id="newer", clients=app.clients)
        await app.producer.begin_transaction()
        await app.producer.produce("ledger", b"from the zombie")
        await newer.start()
        with pytest.raises(TransactionError) as raised:
            await app.producer.commit_transaction()
        assert raised.value.fenced
        await newer.stop()


class Order(msgspec.Struct):
    id: int


async def test_a_poison_message_after_good_ones_goes_to_the_dead_letter_queue_in_their_transaction() -> None:
    app = shop()

    @app.route("orders", exactly_once=True, payload=Order, dead_letter_queue=DeadLetterQueue("orders.dlq"))
    async def invoice(messages: Messages[Order]) -> None:
        for message in messages:  # the second does not decode: the batch aborts, and comes again without it
            await app.producer.produce("invoices", {"order": message.payload.id})

    async with app.testing() as t:
        await t.feed("orders", [b'{"id": 1}', b"not json", b'{"id": 3}'])

        assert [m.payload for m in t.produced("invoices")] == [{"order": 1}, {"order": 3}]
        assert [m.payload for m in t.aborted("invoices")] == [{"order": 1}]
        assert [letter.value for letter in t.dead_lettered("orders")] == [b"not json"]
        assert t.committed("orders") == 3
        assert [e["offset"] for e in t.events.named("transaction.committed")] == [3]  # one for all of it
