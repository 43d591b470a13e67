"""The testing harness: an app's routes run on in-memory clusters, through the real runtime."""

from __future__ import annotations

import sys
from datetime import timedelta

import anyio
import msgspec
import pytest

from aiostream_kafka import App, Consumer, DeadLetterQueue, Messages, Retry
from aiostream_kafka.errors import ConfigError, NotRunningError
from aiostream_kafka.testing import TestApp
from aiostream_kafka.testing.clock import VirtualClock
from aiostream_kafka.topic_config import TopicConfig
from tests.helpers import within


class Order(msgspec.Struct):
    id: int
    total: float


def shop(**options: object) -> App:
    """Two clusters nobody can reach: the harness must never try."""
    return App(
        "shop",
        kafka={"bootstrap_servers": "127.0.0.1:1"},
        clusters={"analytics": {"bootstrap_servers": "127.0.0.1:2"}},
        log_events=False,
        **options,  # type: ignore[arg-type]
    )


# --- feeding routes --------------------------------------------------------------------------


async def test_feed_hands_the_route_one_decoded_batch_with_key_and_headers() -> None:
    app = shop()
    batches: list[Messages[Order]] = []

    @app.route("orders", payload=Order)
    async def on_orders(messages: Messages[Order]) -> None:
        batches.append(messages)

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 9.5), Order(2, 3.0)], key="customer-7", headers={"source": "web"})

    [batch] = batches
    assert [m.payload for m in batch] == [Order(1, 9.5), Order(2, 3.0)]
    assert [m.offset for m in batch] == [0, 1]
    assert {m.key for m in batch} == {b"customer-7"}
    assert batch[0].headers == {"source": b"web"}
    assert (batch.topic, batch.partition, batch.cluster) == ("orders", 0, "primary")


async def test_a_consumer_class_route_is_fed_like_a_function_route() -> None:
    app = shop()
    seen: list[tuple[str, str, int]] = []

    class Clicks(Consumer):
        async def consume(self, messages: Messages[bytes]) -> None:
            seen.extend((self.cluster, self.topic, len(m.value or b"")) for m in messages)

    app.routes.topic("clicks", consumer=Clicks, cluster="analytics")
    async with app.testing() as t:
        await t.feed("clicks", [b"abc", b"de"])

    assert seen == [("analytics", "clicks", 3), ("analytics", "clicks", 2)]


async def test_batches_respect_max_messages_as_in_production() -> None:
    app = shop()
    sizes: list[int] = []

    @app.route("orders", payload=Order, max_messages=2)
    async def on_orders(messages: Messages[Order]) -> None:
        sizes.append(len(messages))

    async with app.testing() as t:
        await t.feed("orders", [Order(i, 1.0) for i in range(5)])
        assert t.committed("orders") == 5

    assert sizes == [2, 2, 1]


async def test_keyed_messages_go_to_the_partition_kafka_would_choose() -> None:
    app = shop()
    partitions: dict[bytes | None, set[int]] = {}

    @app.route("orders", payload=Order, config=TopicConfig(partitions=6))
    async def on_orders(messages: Messages[Order]) -> None:
        for m in messages:
            partitions.setdefault(m.key, set()).add(m.partition)

    async with app.testing() as t:
        for _ in range(3):
            await t.feed("orders", [Order(1, 1.0)], key="customer-1")
        await t.feed("orders", [Order(2, 1.0)], partition=4)

    # murmur2("customer-1") % 6, as Kafka's default partitioner computes it
    assert partitions[b"customer-1"] == {3}
    assert partitions[None] == {4}


# --- every cluster's producer ------------------------------------------------------------------


async def test_every_clusters_producer_is_captured_and_routed_topics_are_consumed_onward() -> None:
    app = shop()
    reached_analytics: list[int] = []

    @app.route("orders", payload=Order)
    async def on_orders(messages: Messages[Order]) -> None:
        for m in messages:
            await app.producer.produce("orders.audit", m.payload, key=str(m.payload.id))
            await app.producers["analytics"].produce("order.events", m.payload, headers={"hop": "1"})

    @app.route("order.events", payload=Order, cluster="analytics")
    async def on_order_events(messages: Messages[Order]) -> None:
        reached_analytics.extend(m.payload.id for m in messages)

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 2.0), Order(2, 4.0)])

        audit = t.produced("orders.audit")
        assert [m.payload for m in audit] == [{"id": 1, "total": 2.0}, {"id": 2, "total": 4.0}]
        assert [m.key for m in audit] == [b"1", b"2"]
        events = t.produced("order.events", cluster="analytics")
        assert [m.payload for m in events] == [Order(1, 2.0), Order(2, 4.0)]  # the route's type
        assert events[0].headers == {"hop": b"1"}
        assert t.produced("order.events") == []  # nothing of it on the primary
        assert t.produced("orders.audit", payload=Order)[0].payload == Order(1, 2.0)

    assert reached_analytics == [1, 2]


async def test_produced_follows_the_apps_primary_producer() -> None:
    app = shop(producer_cluster="analytics")

    @app.route("orders", payload=Order)
    async def on_orders(messages: Messages[Order]) -> None:
        await app.producer.produce("orders.audit", b"x")

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 1.0)])
        assert len(t.produced("orders.audit")) == 1
        assert len(t.produced("orders.audit", cluster="analytics")) == 1
        assert t.produced("orders.audit", cluster="primary") == []


# --- failures, retries and dead-letter queues ----------------------------------------------------


async def test_a_message_that_keeps_failing_is_retried_then_dead_lettered_without_waiting() -> None:
    app = shop()
    attempts: list[int] = []

    @app.route(
        "orders",
        payload=Order,
        retry=Retry(initial=30, maximum=60, jitter=0),
        dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=2),
    )
    async def on_orders(messages: Messages[Order]) -> None:
        for m in messages:
            if m.payload.total < 0:
                attempts.append(messages.attempt)
                raise ValueError(f"order {m.payload.id} has a negative total")
            messages.mark_as_consumed(m)

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 1.0), Order(2, -1.0), Order(3, 1.0)], key="c")

        [dead] = t.dead_lettered("orders")
        assert (dead.source_topic, dead.source_partition, dead.source_offset) == ("orders", 0, 1)
        assert (dead.source_cluster, dead.attempts) == ("primary", 3)
        assert dead.error_type == "builtins.ValueError"
        assert dead.error_message == "order 2 has a negative total"
        assert dead.key == b"c"
        assert msgspec.json.decode(dead.value or b"", type=Order) == Order(2, -1.0)
        assert t.committed("orders") == 3
        delays = [e["delay"] for e in t.events.named("retry.scheduled", topic="orders")]
        assert delays == [30, 60]  # the real policy's delays; the clock jumped over them

    assert attempts == [1, 2, 3]


async def test_the_dlq_gets_the_message_as_it_arrived_whatever_the_handler_did_to_it() -> None:
    app = shop()

    @app.route("orders", dead_letter_queue=DeadLetterQueue("orders.dlq", max_retries=0))
    async def on_orders(messages: Messages[bytes]) -> None:
        for m in messages:
            m.value = b"scribbled over"
            m.key = b"not the key"
        raise ValueError("and then it failed")

    async with app.testing() as t:
        await t.feed("orders", [b'{"id": 1}'], key="c")

        [dead] = t.dead_lettered("orders")
        assert (dead.key, dead.value) == (b"c", b'{"id": 1}')


async def test_a_batch_refuses_marks_pauses_and_seeks_once_its_handler_returned() -> None:
    app = shop()
    kept: list[Messages[bytes]] = []

    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        kept.append(messages)

    async with app.testing() as t:
        await t.feed("orders", [b"{}"])

    [batch] = kept
    with pytest.raises(RuntimeError, match=r"mark_as_consumed on the batch of orders\[0\] after its handler"):
        batch.mark_as_consumed(batch[0])
    with pytest.raises(RuntimeError, match=r"^seek on the batch"):
        batch.seek(0)
    with pytest.raises(RuntimeError, match=r"^pause on the batch"):
        batch.pause()


async def test_a_poison_payload_goes_to_the_dlq_at_once() -> None:
    app = shop()

    @app.route("orders", payload=Order, dead_letter_queue=DeadLetterQueue("orders.dlq"))
    async def on_orders(messages: Messages[Order]) -> None:
        for m in messages:
            assert m.payload.id > 0
            messages.mark_as_consumed(m)

    async with app.testing() as t:
        await t.feed("orders", [b'{"id": 1, "total": 1}', b"not json", b'{"id": 2, "total": 1}'])
        [dead] = t.dead_lettered()
        assert (dead.source_offset, dead.attempts, dead.value) == (1, 1, b"not json")
        assert t.committed("orders") == 3


async def test_without_a_dead_letter_queue_feed_raises_the_handlers_error_after_some_attempts() -> None:
    app = shop()
    calls: list[int] = []

    @app.route("orders", payload=Order)
    async def on_orders(messages: Messages[Order]) -> None:
        calls.append(messages.attempt)
        raise LookupError("no such customer")

    async with app.testing(attempts=2) as t:
        with pytest.raises(LookupError, match="no such customer") as raised:
            await t.feed("orders", [Order(1, 1.0)])
        assert t.committed("orders") is None

    assert calls[:2] == [1, 2]
    if sys.version_info >= (3, 11):  # exception notes
        assert "orders[0]@0 on cluster 'primary' failed 2 times" in raised.value.__notes__[0]


async def test_a_handler_that_recovers_on_retry_settles_normally() -> None:
    app = shop()
    failures = iter([True, False])

    @app.route("orders", payload=Order)
    async def on_orders(messages: Messages[Order]) -> None:
        if next(failures, False):
            raise TimeoutError("the database was slow once")

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 1.0)])
        assert t.committed("orders") == 1
        assert len(t.events.named("batch.failed")) == 1
        assert len(t.events.named("batch.processed")) == 1


# --- offsets, pauses -------------------------------------------------------------------------------


async def test_manual_offset_management_commits_only_what_the_handler_marked() -> None:
    app = shop()

    @app.route("orders", payload=Order, manual_offset_management=True)
    async def on_orders(messages: Messages[Order]) -> None:
        for m in messages:
            if m.payload.id <= 2:
                messages.mark_as_consumed(m)

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 1.0), Order(2, 1.0), Order(3, 1.0)])
        assert t.committed("orders") == 2


async def test_a_timed_pause_passes_on_the_test_clock() -> None:
    app = shop()
    seen: list[tuple[int, int]] = []

    @app.route("orders", payload=Order, manual_offset_management=True)
    async def on_orders(messages: Messages[Order]) -> None:
        first = messages[0]
        seen.append((first.offset, messages.attempt))
        if first.offset == 0 and len(seen) == 1:
            messages.pause(duration=3600)  # an hour, resuming at the first unmarked message
            return
        for m in messages:
            messages.mark_as_consumed(m)

    async with app.testing() as t:
        before = t.clock.now()
        await t.feed("orders", [Order(1, 1.0), Order(2, 1.0)])
        assert t.clock.now() - before >= 3600
        assert t.committed("orders") == 2
    assert [offset for offset, _ in seen] == [0, 0]  # delivered again after the pause


async def test_a_periodic_wait_is_no_wake_up_to_jump_to_but_passes_when_time_moves_on() -> None:
    clock = VirtualClock()
    waiting, ticked = anyio.Event(), anyio.Event()

    async def report_every_ten_minutes() -> None:
        waiting.set()
        await clock.tick(600)  # waiting from here on: no await between
        ticked.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(report_every_ten_minutes)
        await waiting.wait()
        assert (clock.next_wakeup, clock.jump()) == (None, False)  # drain() would be done
        clock.advance(600)
        with within(10, "the periodic wait to end once the clock moved on"):
            await ticked.wait()


# --- jobs ------------------------------------------------------------------------------------------


async def test_enqueued_jobs_are_captured_and_run_on_demand_delays_included() -> None:
    app = shop()
    sent: list[str] = []

    @app.job(topic="mail", name="send_welcome")
    async def send_welcome(to: str) -> None:
        sent.append(to)

    @app.route("signups")
    async def on_signup(messages: Messages[bytes]) -> None:
        for m in messages:
            await send_welcome.enqueue(to=(m.value or b"").decode(), delay=timedelta(hours=1))

    async with app.testing() as t:
        await t.feed("signups", [b"ada@example.com", b"bob@example.com"])
        assert [envelope.args for envelope in t.jobs("send_welcome")] == [
            {"to": "ada@example.com"},
            {"to": "bob@example.com"},
        ]
        assert sent == []  # nobody consumes "mail" in this app: a worker elsewhere would
        before = t.clock.now()
        ran = await t.run_jobs()
        assert len(ran) == 2
        assert t.clock.now() - before >= 3600 - 5
        assert await t.run_jobs() == []  # once each

    assert sent == ["ada@example.com", "bob@example.com"]


async def test_jobs_the_app_consumes_itself_run_through_their_route_when_due() -> None:
    app = shop()
    sent: list[str] = []

    @app.job(topic="mail", name="send_welcome")
    async def send_welcome(to: str) -> None:
        sent.append(to)

    app.jobs.consume("mail")

    @app.route("signups")
    async def on_signup(messages: Messages[bytes]) -> None:
        await send_welcome.enqueue(to="ada@example.com", delay=timedelta(minutes=5))

    async with app.testing() as t:
        await t.feed("signups", [b"x"])
        assert sent == ["ada@example.com"]
        assert t.committed("mail") == 1
        assert await t.run_jobs() == []


# --- what a test can observe --------------------------------------------------------------------------


async def test_monitor_events_are_recorded_with_their_payloads() -> None:
    app = shop()

    @app.route("orders", payload=Order)
    async def on_orders(messages: Messages[Order]) -> None:
        pass

    async with app.testing() as t:
        await t.feed("orders", [Order(1, 1.0)])
        [processed] = t.events.named("batch.processed", topic="orders")
        assert (processed["cluster"], processed["partition"], processed["count"]) == ("primary", 0, 1)
        assert t.events.named("offsets.committed")[-1]["offsets"] == {"orders/0": 1}
    assert t.events.named("app.stopped")


# --- mistakes get clear errors -----------------------------------------------------------------------


async def test_feeding_a_topic_no_route_consumes_names_the_routed_ones() -> None:
    app = shop()

    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        pass

    async with app.testing() as t:
        with pytest.raises(ConfigError, match=r"no route consumes 'order'; routed topics: primary/orders"):
            await t.feed("order", [b"x"])
        with pytest.raises(TypeError, match=r"wrap a single one in \[\.\.\.\]"):
            await t.feed("orders", b"x")
        with pytest.raises(ValueError, match="'orders' on cluster 'primary' has 1 partition"):
            await t.feed("orders", [b"x"], partition=3)
        with pytest.raises(ConfigError, match="analytcs"):
            t.produced("orders", cluster="analytcs")


async def test_a_topic_routed_on_two_clusters_needs_the_cluster_named() -> None:
    app = shop()
    seen: list[str] = []

    async def handle(messages: Messages[bytes]) -> None:
        seen.append(messages.cluster)

    app.routes.topic("events", handler=handle)
    app.routes.topic("events", handler=handle, cluster="analytics")
    async with app.testing() as t:
        with pytest.raises(ConfigError, match="routed on clusters"):
            await t.feed("events", [b"x"])
        await t.feed("events", [b"x"], cluster="analytics")
    assert seen == ["analytics"]


async def test_an_app_can_be_tested_again_and_again_but_not_while_it_runs_for_real() -> None:
    app = shop()
    counts: list[int] = []

    @app.route("orders")
    async def on_orders(messages: Messages[bytes]) -> None:
        counts.append(len(messages))

    for _ in range(2):
        async with app.testing() as t:
            await t.feed("orders", [b"a"])
            assert t.committed("orders") == 1  # each test starts from empty clusters
            with pytest.raises(NotRunningError, match="not running"):
                async with app.testing():
                    pass
    assert counts == [1, 1]
    assert app.clients.__class__.__name__ == "KafkaClients"  # put back afterwards


def test_testing_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="partitions"):
        TestApp(shop(), partitions=0)
    with pytest.raises(ConfigError, match="attempts"):
        TestApp(shop(), attempts=0)
