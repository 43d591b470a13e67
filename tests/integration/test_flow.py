"""Filtering, throttling, expiry and delays on real Kafka: what a route holds back from its
handler is committed as done or fetched again, never lost, and each shows in its events.

Old record timestamps are written explicitly (``timestamp_ms``), so expiry and delays are
seen without waiting for real time; the delay and throttle tests wait on their events."""

from __future__ import annotations

import time
import uuid

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from aiostream_kafka import App, Backoff, Message, Messages, Pause, Throttle
from tests.helpers import Events, committed_offsets, create_topic, eventually, forwarding_topics, produce


def app_on(primary: str, **settings: object) -> App:
    return App(
        f"flow-{uuid.uuid4().hex[:8]}",
        kafka={"bootstrap_servers": primary, **settings},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        retry_backoff=Backoff(initial=0.05, maximum=0.2),
    )


def committed_to(events: Events, topic: str, offset: int) -> bool:
    """Whether an ``offsets.committed`` event has reached ``offset`` on ``topic``'s partition 0."""
    return any(e["offsets"].get(f"{topic}/0", -1) >= offset for e in events.named("offsets.committed"))


def even(message: Message[bytes]) -> bool:
    return int(message.value or b"0") % 2 == 0


def expiring_after_a_minute(primary: str, topic: str) -> tuple[App, Events, list[bytes | None]]:
    """An app whose route on ``topic`` skips messages over a minute old; its events, and the
    values its handler was given."""
    app = app_on(primary)
    events = Events(app)
    seen: list[bytes | None] = []

    @app.route(topic, expire_after=60)
    async def on_alerts(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    return app, events, seen


async def test_filtered_messages_are_skipped_and_committed_so_a_restart_does_not_see_them(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await produce(primary, topic_name, *(b"%d" % i for i in range(7)), partition=0)
    app = app_on(primary)
    events = Events(app)
    seen: list[bytes | None] = []

    @app.route(topic_name, filter=even)
    async def on_numbers(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with app.running():
        await eventually(lambda: committed_to(events, topic_name, 7), what="offsets committed past all 7")

    assert seen == [b"0", b"2", b"4", b"6"]
    assert sum(e["count"] for e in events.named("messages.filtered")) == 3
    assert (await committed_offsets(primary, app.group_id))[TopicPartition(topic_name, 0)] == 7


async def test_a_filter_pause_holds_the_partition_and_that_message_comes_again_after_it(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await produce(primary, topic_name, b"a", b"wait", b"b", partition=0)
    app = app_on(primary)
    events = Events(app)
    seen: list[tuple[bytes | None, float]] = []
    paused_once: list[bool] = []

    def hold_once(message: Message[bytes]) -> bool | Pause:
        if message.value == b"wait" and not paused_once:
            paused_once.append(True)
            return Pause(until=1.0)
        return True

    @app.route(topic_name, filter=hold_once)
    async def on_values(messages: Messages[bytes]) -> None:
        seen.extend((m.value, time.time()) for m in messages)

    async with app.running():
        await eventually(lambda: len(seen) == 3, what="all three values, the held one after its pause")

    [paused] = events.named("partition.paused")
    assert (paused["offset"], paused["reason"]) == (1, "filter")
    assert [value for value, _ in seen] == [b"a", b"wait", b"b"]
    assert seen[1][1] >= paused["until"]


async def test_a_throttle_never_hands_more_than_its_budget_in_any_interval(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await produce(primary, topic_name, *[b"m"] * 12, partition=0)
    app = app_on(primary)
    events = Events(app)
    handed: list[tuple[float, int]] = []

    @app.route(topic_name, throttle=Throttle(messages=5, per=1.0))
    async def on_mails(messages: Messages[bytes]) -> None:
        handed.append((app.clock.now(), len(messages)))

    async with app.running():
        await eventually(lambda: sum(n for _, n in handed) == 12, what="12 messages through the throttle")
        await eventually(lambda: committed_to(events, topic_name, 12), what="offsets committed past all 12")

    for start, _ in handed:  # any interval of 1 s that begins at a batch holds at most 5
        assert sum(n for at, n in handed if start <= at < start + 1.0) <= 5
    throttled = events.named("partition.throttled")
    assert len(throttled) >= 2
    assert [e["offset"] for e in throttled][:2] == [5, 10]


async def test_a_partition_throttle_budgets_each_partition_and_a_route_throttle_shares_one(
    primary: str, topic_name: str
) -> None:
    for topic in (f"{topic_name}-p", f"{topic_name}-r"):
        await create_topic(primary, topic, partitions=2)
        for partition in (0, 1):
            await produce(primary, topic, b"a", b"b", partition=partition)
    app = app_on(primary)
    events = Events(app)
    handled: dict[str, int] = {}

    async def count(messages: Messages[bytes]) -> None:
        handled[messages.topic] = handled.get(messages.topic, 0) + len(messages)

    app.routes.topic(f"{topic_name}-p", handler=count, throttle=Throttle(2, per=3600, scope="partition"))
    app.routes.topic(f"{topic_name}-r", handler=count, throttle=Throttle(2, per=3600))

    async with app.running():
        await eventually(lambda: handled.get(f"{topic_name}-p") == 4, what="both partitions' budgets used")
        await eventually(lambda: bool(events.named("partition.throttled")), what="the shared budget spent")

    assert handled[f"{topic_name}-r"] == 2  # the other partition waits an hour for the route's budget
    assert {e["topic"] for e in events.named("partition.throttled")} == {f"{topic_name}-r"}


async def test_a_partition_paused_by_a_throttle_loses_nothing_when_its_app_stops(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    await produce(primary, topic_name, *(b"%d" % i for i in range(9)), partition=0)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = App("flow-first", kafka={"bootstrap_servers": primary}, group_id=group)
    events = Events(first)
    seen: list[bytes | None] = []

    @first.route(topic_name, throttle=Throttle(messages=3, per=3600))
    async def throttled(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with first.running():
        await eventually(lambda: bool(events.named("partition.throttled")), what="the throttle's pause")
    assert seen == [b"0", b"1", b"2"]
    assert (await committed_offsets(primary, group))[TopicPartition(topic_name, 0)] == 3

    second = App("flow-second", kafka={"bootstrap_servers": primary}, group_id=group)

    @second.route(topic_name)
    async def unthrottled(messages: Messages[bytes]) -> None:
        seen.extend(m.value for m in messages)

    async with second.running():
        await eventually(lambda: len(seen) == 9, what="the other six, from the committed offset")

    assert seen == [b"%d" % i for i in range(9)]  # lost=0, duplicates=0


async def test_messages_older_than_expire_after_by_create_time_are_skipped_and_counted(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    an_hour_ago = int((time.time() - 3600) * 1000)
    await produce(primary, topic_name, b"stale-1", b"stale-2", partition=0, timestamp_ms=an_hour_ago)
    await produce(primary, topic_name, b"fresh", partition=0)
    app, events, seen = expiring_after_a_minute(primary, topic_name)

    async with app.running():
        await eventually(lambda: committed_to(events, topic_name, 3), what="offsets committed past all 3")

    assert seen == [b"fresh"]
    assert sum(e["count"] for e in events.named("messages.expired")) == 2


async def test_on_a_log_append_time_topic_expiry_goes_by_the_brokers_time(
    primary: str, topic_name: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=primary)
    await admin.start()
    try:
        config = {"message.timestamp.type": "LogAppendTime"}
        await admin.create_topics([NewTopic(topic_name, 1, 1, topic_configs=config)])
    finally:
        await admin.close()
    an_hour_ago = int((time.time() - 3600) * 1000)
    await produce(primary, topic_name, b"written-now", partition=0, timestamp_ms=an_hour_ago)
    app, events, seen = expiring_after_a_minute(primary, topic_name)

    async with app.running():
        await eventually(lambda: len(seen) == 1, what="the record the broker stamped as it arrived")

    assert events.named("messages.expired") == []


async def test_a_delayed_route_processes_a_message_only_once_it_is_old_enough(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    a_minute_ago = int((time.time() - 60) * 1000)
    await produce(primary, topic_name, b"due", partition=0, timestamp_ms=a_minute_ago)
    await produce(primary, topic_name, b"young", partition=0)
    app = app_on(primary)
    events = Events(app)
    ages: dict[bytes | None, float] = {}

    @app.route(topic_name, delay=1.5)
    async def on_grace(messages: Messages[bytes]) -> None:
        ages.update((m.value, time.time() - m.timestamp_ms / 1000) for m in messages)

    async with app.running():
        await eventually(lambda: len(ages) == 2, what="both messages, the young one once due")
        await eventually(lambda: committed_to(events, topic_name, 2), what="offsets committed past both")

    assert ages[b"due"] >= 60
    assert ages[b"young"] >= 1.5
    [delayed] = events.named("partition.delayed")
    assert (delayed["offset"], delayed["delay"]) == (1, 1.5)


async def test_skipped_messages_of_an_exactly_once_route_commit_in_its_transactions(
    primary: str, topic_name: str
) -> None:
    out = await forwarding_topics(primary, topic_name, b"1", b"3", b"4", b"5")
    app = app_on(primary)
    events = Events(app)

    @app.route(topic_name, exactly_once=True, filter=even, max_messages=2)
    async def forward(messages: Messages[bytes]) -> None:
        for message in messages:
            await app.producer.produce(out, message.value)

    async with app.running():
        await eventually(lambda: committed_to(events, topic_name, 4), what="offsets committed past all 4")

    commits = events.named("offsets.committed")
    assert all(e["transactional"] for e in commits)
    assert [e["offsets"][f"{topic_name}/0"] for e in commits] == [2, 4]  # [1, 3] skipped, [4, 5] one kept
    assert (await committed_offsets(primary, app.group_id))[TopicPartition(topic_name, 0)] == 4
