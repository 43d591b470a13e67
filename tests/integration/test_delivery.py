"""Delivery guarantees on real Kafka: dead-letter queues, poison messages, manual offsets,
pause and seek from a handler, fatal errors."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

import anyio
import msgspec
import pytest
from aiokafka import TopicPartition

from aiostream_kafka import App, Backoff, Consumer, DeadLetterQueue, Messages, Retry
from aiostream_kafka.messages import SeekTarget
from tests.helpers import Events, committed_offsets, create_topic, eventually, produce, read_all, read_records

FAST = Retry(initial=0.05, maximum=0.1, jitter=0)


class Order(msgspec.Struct):
    id: int


def app_on(bootstrap: str, **options: Any) -> App:
    return App(
        "delivery", kafka={"bootstrap_servers": bootstrap}, group_id=f"g-{uuid.uuid4().hex[:8]}", **options
    )


async def test_a_message_that_keeps_failing_goes_to_the_dlq_with_its_story_and_the_rest_flows(
    primary: str, topic_name: str
) -> None:
    app = app_on(primary)
    events = Events(app)
    processed: list[bytes | None] = []
    attempts_on_bad: list[int] = []
    dlq = f"{topic_name}.dlq"

    @app.route(topic_name, retry=FAST, dead_letter_queue=DeadLetterQueue(dlq, max_retries=2))
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value == b"bad":
                attempts_on_bad.append(messages.attempt)
                raise ValueError("cannot handle bad")
            processed.append(message.value)
            messages.mark_as_consumed(message)

    await create_topic(primary, topic_name)
    async with app.running():
        for value in (b"good-1", b"bad", b"good-2"):
            await app.producer.produce(topic_name, value, key="k", headers={"trace": "t1"})
        await eventually(lambda: processed == [b"good-1", b"good-2"], what="the good messages")

    assert attempts_on_bad == [1, 2, 3]
    [dead] = await read_records(primary, dlq)
    headers = dict(dead.headers)
    assert (dead.key, dead.value) == (b"k", b"bad")
    assert headers["trace"] == b"t1"
    assert headers["source_topic"] == topic_name.encode()
    assert (headers["source_partition"], headers["source_offset"]) == (b"0", b"1")
    assert headers["source_cluster"] == b"primary"
    assert headers["source_key"] == b"k"
    assert headers["error_type"] == b"builtins.ValueError"
    assert headers["error_message"] == b"cannot handle bad"
    assert headers["attempts"] == b"3"
    assert await committed_offsets(primary, app.group_id) == {TopicPartition(topic_name, 0): 3}
    assert events.count("dlq.dispatched", offset=1, dlq_topic=dlq, dlq_cluster="primary") == 1


async def test_the_dlq_goes_to_the_source_topics_own_cluster_unless_another_is_named(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = App(
        "dlq-clusters",
        kafka={"bootstrap_servers": primary},
        clusters={"secondary": {"bootstrap_servers": secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
    )

    async def always_fails(messages: Messages[bytes]) -> None:
        raise RuntimeError("no")

    app.routes.topic(
        f"{topic_name}-own",
        handler=always_fails,
        cluster="secondary",
        dead_letter_queue=DeadLetterQueue(f"{topic_name}-own.dlq", max_retries=0),
    )
    app.routes.topic(
        f"{topic_name}-named",
        handler=always_fails,
        cluster="secondary",
        dead_letter_queue=DeadLetterQueue(f"{topic_name}-named.dlq", max_retries=0, cluster="primary"),
    )
    events = Events(app)
    async with app.running():
        await app.producers["secondary"].produce(f"{topic_name}-own", b"1")
        await app.producers["secondary"].produce(f"{topic_name}-named", b"2")
        await eventually(lambda: events.count("dlq.dispatched") == 2, what="two dispatches")

    assert await read_all(secondary, f"{topic_name}-own.dlq") == [b"1"]
    assert await read_all(primary, f"{topic_name}-own.dlq") == []
    assert await read_all(primary, f"{topic_name}-named.dlq") == [b"2"]


async def test_a_dlq_without_a_topic_skips_the_message(primary: str, topic_name: str) -> None:
    app = app_on(primary)
    events = Events(app)
    processed: list[bytes | None] = []

    @app.route(topic_name, retry=FAST, dead_letter_queue=DeadLetterQueue(None, max_retries=1))
    async def handle(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value == b"skip me":
                raise RuntimeError("unprocessable")
            processed.append(message.value)
            messages.mark_as_consumed(message)

    await create_topic(primary, topic_name)
    async with app.running():
        for value in (b"skip me", b"after"):
            await app.producer.produce(topic_name, value)
        await eventually(lambda: processed == [b"after"], what="the message after the skipped one")

    [skipped] = events.named("dlq.dispatched")
    assert (skipped["offset"], skipped["dlq_topic"], skipped["attempts"]) == (0, None, 2)
    assert await committed_offsets(primary, app.group_id) == {TopicPartition(topic_name, 0): 2}


@pytest.mark.parametrize(("independent", "dead_lettered"), [(False, [b"b"]), (True, [])])
async def test_independent_mode_restarts_the_count_after_progress(
    primary: str, topic_name: str, independent: bool, dead_lettered: list[bytes]
) -> None:
    """a and b each fail once. Counting on from a's failure, b is out of retries; independently, it is not."""
    app = app_on(primary)
    failed_once: set[bytes | None] = set()
    processed: list[bytes | None] = []
    dlq = f"{topic_name}.dlq"
    queue = DeadLetterQueue(dlq, max_retries=1, independent=independent)

    @app.route(topic_name, retry=FAST, dead_letter_queue=queue)
    async def flaky(messages: Messages[bytes]) -> None:
        for message in messages:
            if message.value in (b"a", b"b") and message.value not in failed_once:
                failed_once.add(message.value)
                raise RuntimeError(f"{message.value!r} fails once")
            processed.append(message.value)
            messages.mark_as_consumed(message)

    await create_topic(primary, topic_name)
    async with app.running():
        for value in (b"a", b"b", b"c"):
            await app.producer.produce_nowait(topic_name, value)
        await app.producer.flush()
        await eventually(lambda: b"c" in processed, what="the last message")

    assert await read_all(primary, dlq) == dead_lettered
    assert processed == [v for v in (b"a", b"b", b"c") if v not in dead_lettered]


async def test_an_undecodable_payload_goes_straight_to_the_dlq_with_the_decode_error(
    primary: str, topic_name: str
) -> None:
    app = app_on(primary)
    orders: list[int] = []
    dlq = f"{topic_name}.dlq"

    @app.route(topic_name, payload=Order, retry=FAST, dead_letter_queue=DeadLetterQueue(dlq, max_retries=5))
    async def handle(messages: Messages[Order]) -> None:
        for message in messages:
            orders.append(message.payload.id)
            messages.mark_as_consumed(message)

    await create_topic(primary, topic_name)
    async with app.running():
        for value in (b'{"id": 1}', b"{not json", b'{"id": 3}'):
            await app.producer.produce_nowait(topic_name, value)
        await app.producer.flush()
        await eventually(lambda: 3 in orders, what="the order after the poison one")

    assert orders == [1, 3]
    [poison] = await read_records(primary, dlq)
    headers = dict(poison.headers)
    assert poison.value == b"{not json"
    assert headers["decode_error"] == b"true"
    assert headers["error_type"] == b"aiostream_kafka.errors.DecodeError"
    assert b"offset 1" in headers["error_message"]
    assert headers["attempts"] == b"1"


async def test_with_manual_offsets_only_what_the_handler_marks_is_committed(
    primary: str, topic_name: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(primary, topic_name, *[f"m{i}".encode() for i in range(5)])

    first = App("manual", kafka={"bootstrap_servers": primary}, group_id=group)
    seen_first: list[int] = []

    @first.route(topic_name, manual_offset_management=True)
    async def marks_up_to_two(messages: Messages[bytes]) -> None:
        for message in messages:
            seen_first.append(message.offset)
            if message.offset <= 2:
                messages.mark_as_consumed(message)

    async with first.running():
        await eventually(lambda: len(seen_first) == 5, what="all five delivered once")
        # Unmarked is not a failure, so nothing goes back: a redelivery of 3 and 4 would come
        # before a message produced now.
        await first.producer.produce(topic_name, b"m5")
        await eventually(lambda: 5 in seen_first, what="the message after the five")

    assert seen_first == [0, 1, 2, 3, 4, 5]
    assert await committed_offsets(primary, group) == {TopicPartition(topic_name, 0): 3}

    second = App("manual", kafka={"bootstrap_servers": primary}, group_id=group)
    seen_second: list[int] = []

    @second.route(topic_name, manual_offset_management=True)
    async def again(messages: Messages[bytes]) -> None:
        seen_second.extend(m.offset for m in messages)

    async with second.running():
        await eventually(lambda: len(seen_second) == 3, what="the unmarked three")

    assert seen_second == [3, 4, 5]


async def test_a_handler_can_pause_its_partition_for_a_while(primary: str, topic_name: str) -> None:
    app = app_on(primary)
    arrivals: list[tuple[int, float]] = []

    @app.route(topic_name, max_messages=2)
    async def handle(messages: Messages[bytes]) -> None:
        arrivals.extend((m.offset, anyio.current_time()) for m in messages)
        if messages.first_offset == 0:
            messages.pause(duration=1.5)

    await create_topic(primary, topic_name)
    async with app.running():
        for i in range(4):
            await app.producer.produce_nowait(topic_name, str(i))
        await app.producer.flush()
        await eventually(lambda: len(arrivals) == 4, what="all four, the last two after the pause")

    assert [offset for offset, _ in arrivals] == [0, 1, 2, 3]
    assert arrivals[2][1] - arrivals[1][1] >= 1.4


#: Create times a second apart (a minute ago, well within retention), and a time between
#: them: the first message at or after it is offset 1.
BEFORE_MS = int(time.time() * 1000) - 60_000
AFTER_MS = BEFORE_MS + 1000
BETWEEN = datetime.fromtimestamp((BEFORE_MS + 500) / 1000, timezone.utc)


@pytest.mark.parametrize("target", ["earliest", 1, BETWEEN], ids=["earliest", "an-offset", "a-datetime"])
async def test_a_handler_can_seek_its_partition(primary: str, topic_name: str, target: SeekTarget) -> None:
    app = app_on(primary)
    offsets: list[int] = []
    sought = False
    await produce(primary, topic_name, b"0", timestamp_ms=BEFORE_MS)
    await produce(primary, topic_name, b"1", b"2", timestamp_ms=AFTER_MS)

    @app.route(topic_name)
    async def handle(messages: Messages[bytes]) -> None:
        nonlocal sought
        offsets.extend(m.offset for m in messages)
        if not sought and messages.last_offset == 2:
            sought = True
            messages.seek(target)

    async with app.running():
        await eventually(lambda: sought and offsets.count(2) == 2, what="the replay after the seek")

    replay_from = 0 if target == "earliest" else 1
    assert offsets == [0, 1, 2, *range(replay_from, 3)]


async def test_a_consumer_can_pause_a_partition_until_something_resumes_it(
    primary: str, topic_name: str
) -> None:
    app = app_on(primary)
    events = Events(app)
    seen: dict[int, list[int]] = {0: [], 1: []}
    consumers: list[Consumer] = []

    class PausesOnFirst(Consumer):
        async def on_start(self) -> None:
            consumers.append(self)

        async def consume(self, messages: Messages[bytes]) -> None:
            seen[messages.partition].extend(m.offset for m in messages)
            if messages.partition == 0 and messages.first_offset == 0:
                self.pause(0)  # no time limit

    def committed(partition: int, offset: int) -> bool:
        name = f"{topic_name}/{partition}"
        return any(e["offsets"].get(name) == offset for e in events.named("offsets.committed"))

    app.routes.topic(topic_name, consumer=PausesOnFirst)
    await create_topic(primary, topic_name, partitions=2)
    async with app.running():
        await app.producer.produce(topic_name, b"0", partition=0)
        await eventually(lambda: committed(0, 1), what="the first message handled")
        await app.producer.produce(topic_name, b"1", partition=0)
        # Written after offset 1, read in the same fetch had partition 0 not been paused, and
        # committed only once every partition of that poll is done.
        await app.producer.produce(topic_name, b"later", partition=1)
        await eventually(lambda: committed(1, 1), what="the later message on partition 1 committed")
        assert seen == {0: [0], 1: [0]}  # partition 0 still paused

        consumers[0].resume(0)
        await eventually(lambda: seen[0] == [0, 1], what="the message after resume")


async def test_a_fatal_error_is_not_retried_and_ends_the_app(primary: str, topic_name: str) -> None:
    app = app_on(primary, restart_backoff=Backoff(initial=0.05, maximum=0.1))
    events = Events(app)
    calls: list[int] = []

    @app.route(topic_name, retry=FAST, dead_letter_queue=DeadLetterQueue(f"{topic_name}.dlq", max_retries=0))
    async def out_of_memory(messages: Messages[bytes]) -> None:
        calls.append(messages.first_offset)
        raise MemoryError("simulated")

    async with app.running():
        await app.producer.produce(topic_name, b"x")
        await eventually(lambda: app.failure is not None, what="the supervisor to stop on the fatal error")

    assert isinstance(app.failure, MemoryError)
    assert calls == [0]
    assert (
        events.count("batch.failed")
        == events.count("dlq.dispatched")
        == events.count("listener.restarted")
        == 0
    )
    assert await committed_offsets(primary, app.group_id) == {}
