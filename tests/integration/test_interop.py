"""Foreign clients against the framework, both ways: the reference Java client (kafka-clients
4.4) and librdkafka (confluent-kafka) produce what routes consume, and read back what our
producers write. docs/interop.md is the prose version of what these tests show."""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka import TopicPartition

from aiostream_kafka import App, Message, Messages, ProducerRecord
from tests.foreign import (
    CODECS,
    Consumed,
    ForeignClient,
    Header,
    JavaClient,
    Librdkafka,
    ProducerSpec,
    Record,
    Sent,
    Transaction,
    batch_codecs,
)
from tests.helpers import Events, committed_offsets, create_topic, end_offset, eventually, eventually_equal

pytestmark = pytest.mark.slow


class Order(msgspec.Struct):
    id: int
    total: float


@pytest.fixture(scope="session")
def java(tmp_path_factory: pytest.TempPathFactory) -> JavaClient:
    return JavaClient.compile(Path(tmp_path_factory.mktemp("interop-java")))


@pytest.fixture(params=["java", "librdkafka"])
def foreign(request: pytest.FixtureRequest, java: JavaClient) -> ForeignClient:
    """Each test that takes this runs once with each foreign client."""
    return java if request.param == "java" else Librdkafka()


class Received:
    """What an app's handlers were given; ``payloads()`` is read before the messages are made,
    as a handler that only wants payloads would."""

    def __init__(self) -> None:
        self.messages: list[Message[Any]] = []
        self.payloads: list[Any] = []

    async def handle(self, messages: Messages[Any]) -> None:
        self.payloads += messages.payloads()
        self.messages += messages

    def on(self, topic: str) -> list[Message[Any]]:
        return sorted((m for m in self.messages if m.topic == topic), key=lambda m: m.offset)


def as_sent(messages: Sequence[Message[Any]]) -> list[tuple[bytes | None, bytes | None, list[Header]]]:
    return [(m.key, m.value, list(m.raw_headers)) for m in messages]


def as_records(records: Sequence[Record]) -> list[tuple[bytes | None, bytes | None, list[Header]]]:
    return [(r.key, r.value, list(r.headers)) for r in records]


def on_topic(consumed: Sequence[Consumed], topic: str) -> list[Consumed]:
    return sorted((c for c in consumed if c.topic == topic), key=lambda c: (c.partition, c.offset))


async def running_until(app: App, received: Received, count: int, *producing: Awaitable[object]) -> None:
    """Run ``app``, await what produces, and return once its handlers have seen ``count`` messages."""
    async with app.running():
        for step in producing:
            await step
        await eventually(lambda: len(received.messages) >= count, what=f"{count} messages")


# --- 1. codecs ---------------------------------------------------------------------------------


async def test_keyed_records_with_headers_arrive_intact_through_every_codec_in_one_subscription_group(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    topics = {codec: f"{topic_name}-{codec}" for codec in CODECS}
    sent = {
        codec: [
            Record(
                topic,
                value=b'{"n":%d,"codec":"%s"}' % (n, codec.encode()) * 10,  # worth compressing
                key=b"key-%d" % n,
                headers=[("codec", codec.encode()), ("n", b"%d" % n)],
            )
            for n in range(20)
        ]
        for codec, topic in topics.items()
    }
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    received = Received()
    for topic in topics.values():
        await create_topic(primary, topic)
        app.routes.topic(topic, handler=received.handle)
    [group] = app.topology.subscription_groups
    assert sorted(t.name for t in group.topics) == sorted(topics.values())

    producers = [ProducerSpec({"compression.type": codec}, sent[codec]) for codec in CODECS]
    await running_until(app, received, 100, foreign.produce(primary, *producers))

    for codec, topic in topics.items():
        assert as_sent(received.on(topic)) == as_records(sent[codec]), codec
        assert set(await batch_codecs(primary, topic)) == {codec}  # the client really compressed


async def test_our_producer_with_every_compression_type_is_read_back_by_a_foreign_consumer(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    topics = {codec: f"{topic_name}-{codec}" for codec in CODECS}
    for codec, topic in topics.items():
        app = App(topic_name, kafka={"bootstrap_servers": primary, "compression_type": codec})
        async with app.running():
            await app.producer.produce_many(
                ProducerRecord(
                    topic, {"n": n} if n % 2 else "text " * 20, key=f"key-{n}", headers={"codec": codec}
                )
                for n in range(20)
            )

    consumed = await foreign.consume(primary, list(topics.values()), 100)

    for codec, topic in topics.items():
        assert [(c.key, c.value, c.headers) for c in on_topic(consumed, topic)] == [
            (b"key-%d" % n, b'{"n":%d}' % n if n % 2 else b"text " * 20, [("codec", codec.encode())])
            for n in range(20)
        ], codec
        assert set(await batch_codecs(primary, topic)) == {codec}


# --- 2. tombstones and null keys ---------------------------------------------------------------


async def test_a_tombstone_has_a_none_payload_on_typed_and_untyped_routes_and_null_keys_stay_none(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    typed, untyped = f"{topic_name}-typed", f"{topic_name}-untyped"
    order = b'{"id":1,"total":9.5}'
    records = {
        topic: [
            Record(topic, order, key=b"order-1"),
            Record(topic, None, key=b"order-1"),  # the tombstone for order-1
            Record(topic, b'{"id":2,"total":1.0}', key=None),
            Record(topic, None, key=None),
        ]
        for topic in (typed, untyped)
    }
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    events = Events(app)
    typed_received, untyped_received = Received(), Received()
    app.routes.topic(typed, handler=typed_received.handle, payload=Order)
    app.routes.topic(untyped, handler=untyped_received.handle)
    for topic in (typed, untyped):
        await create_topic(primary, topic)

    async with app.running():
        await foreign.produce(primary, ProducerSpec({}, records[typed] + records[untyped]))
        await eventually(lambda: len(typed_received.messages) == len(untyped_received.messages) == 4)

    assert [(m.key, m.value, m.payload) for m in typed_received.messages] == [
        (b"order-1", order, Order(1, 9.5)),
        (b"order-1", None, None),
        (None, b'{"id":2,"total":1.0}', Order(2, 1.0)),
        (None, None, None),
    ]
    assert typed_received.payloads == [Order(1, 9.5), None, Order(2, 1.0), None]
    assert [(m.key, m.payload) for m in untyped_received.messages] == [
        (b"order-1", order),
        (b"order-1", None),
        (None, b'{"id":2,"total":1.0}'),
        (None, None),
    ]
    assert untyped_received.payloads == [m.value for m in untyped_received.messages]
    assert events.count("batch.failed") == 0


async def test_our_tombstones_and_null_keys_reach_a_foreign_consumer_as_nulls(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    async with app.running():
        await app.producer.produce(topic_name, Order(1, 9.5), key="order-1")
        await app.producer.produce(topic_name, None, key="order-1")
        await app.producer.produce(topic_name, b"no key")
        # No key and no value at all is the one record aiokafka refuses to send (an assert).

    consumed = await foreign.consume(primary, [topic_name], 3)

    assert [(c.key, c.value) for c in consumed] == [
        (b"order-1", b'{"id":1,"total":9.5}'),
        (b"order-1", None),
        (None, b"no key"),
    ]


# --- 3. binary keys ----------------------------------------------------------------------------

BINARY_KEYS = [
    b"\x00",
    b"\xff\xfe\xfd",
    b"\xc3\x28",  # not UTF-8
    b"caf\xe9",  # Latin-1, not UTF-8
    b"",  # empty, which is not null
    bytes(range(256)),
]


async def test_binary_and_non_utf8_keys_arrive_as_the_exact_bytes(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    records = [Record(topic_name, b"value %d" % n, key=key) for n, key in enumerate(BINARY_KEYS)]
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    received = Received()
    app.routes.topic(topic_name, handler=received.handle)
    await create_topic(primary, topic_name)

    await running_until(app, received, len(records), foreign.produce(primary, ProducerSpec({}, records)))

    assert [m.key for m in received.on(topic_name)] == BINARY_KEYS


async def test_our_binary_keys_reach_a_foreign_consumer_as_the_exact_bytes(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    async with app.running():
        await app.producer.produce_many(
            ProducerRecord(topic_name, b"value %d" % n, key=key) for n, key in enumerate(BINARY_KEYS)
        )

    consumed = await foreign.consume(primary, [topic_name], len(BINARY_KEYS))

    assert [c.key for c in consumed] == BINARY_KEYS


# --- 4. timestamps and headers -----------------------------------------------------------------

A_TIME_MS = 1_600_000_000_123  # 2020-09-13 12:26:40.123 UTC
HEADERS: list[Header] = [
    ("dup", b"first"),
    ("dup", b"second"),  # a name may repeat; order is kept
    ("null", None),  # a header without a value
    ("empty", b""),
    ("binary", b"\x00\xff"),
]


async def test_create_time_and_every_header_arrive_as_the_producer_set_them(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    received = Received()
    app.routes.topic(topic_name, handler=received.handle)
    await create_topic(primary, topic_name)
    before_ms = int(time.time() * 1000)
    records = [
        Record(topic_name, b"then", key=b"k", headers=HEADERS, timestamp_ms=A_TIME_MS),
        Record(topic_name, b"now", key=b"k"),  # the producer's clock sets CreateTime
    ]

    await running_until(app, received, 2, foreign.produce(primary, ProducerSpec({}, records)))

    then, now = received.on(topic_name)
    assert then.timestamp_ms == A_TIME_MS
    assert then.timestamp == datetime(2020, 9, 13, 12, 26, 40, 123000, tzinfo=timezone.utc)
    assert before_ms <= now.timestamp_ms <= int(time.time() * 1000)
    assert list(then.raw_headers) == HEADERS
    assert then.headers == {"dup": b"second", "null": None, "empty": b"", "binary": b"\x00\xff"}
    assert list(now.raw_headers) == []


async def test_our_timestamps_and_headers_reach_a_foreign_consumer_as_we_set_them(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    async with app.running():
        await app.producer.produce(topic_name, b"then", key="k", headers=HEADERS, timestamp_ms=A_TIME_MS)

    [consumed] = await foreign.consume(primary, [topic_name], 1)

    assert (consumed.timestamp_type, consumed.timestamp_ms) == ("CreateTime", A_TIME_MS)
    assert consumed.headers == HEADERS


# --- 5. transactional upstreams ----------------------------------------------------------------


async def test_a_transactional_upstream_delivers_only_committed_records_and_the_group_reaches_lag_0(
    foreign: ForeignClient, primary: str, topic_name: str
) -> None:
    aborted = [Record(topic_name, b"aborted %d" % n, key=b"a") for n in range(2)]
    committed = [Record(topic_name, b"committed %d" % n, key=b"c") for n in range(2)]
    upstream = ProducerSpec(
        {"transactional.id": f"{topic_name}-{foreign.name}"},
        transactions=[Transaction("abort", aborted), Transaction("commit", committed)],
    )
    app = App(topic_name, kafka={"bootstrap_servers": primary})
    received = Received()
    app.routes.topic(topic_name, handler=received.handle)
    await create_topic(primary, topic_name)

    async with app.running():
        sent = [s.offset for s in await foreign.produce(primary, upstream)]
        await eventually(
            lambda: any(m.offset == sent[-1] for m in received.messages), what="the last committed record"
        )
        # Each transaction ends with a control record (its marker), one offset each.
        assert sent == [0, 1, 3, 4]
        end = await end_offset(primary, topic_name)
        assert end == 6

        # Everything up to the last committed record was handed over, and only that.
        assert [(m.offset, m.value) for m in received.on(topic_name)] == [
            (3, b"committed 0"),
            (4, b"committed 1"),
        ]
        assert received.payloads == [b"committed 0", b"committed 1"]
        # The group commits past the final marker: nothing is left to consume.
        await eventually_equal(
            lambda: committed_offsets(primary, topic_name),
            {TopicPartition(topic_name, 0): end},
            what="the group's committed offset to reach the end offset (lag 0)",
        )


# --- 6. the partitioner ------------------------------------------------------------------------

PARTITIONS = 6
KEYS = [b"user-%d" % n for n in range(60)] + [bytes([n, 255 - n, 0]) for n in range(20)]


def keyed(topic: str) -> list[Record]:
    return [Record(topic, b"", key=key) for key in KEYS]


def partition_of(sent: Sequence[Sent]) -> dict[bytes, int]:
    return {key: s.partition for key, s in zip(KEYS, sent, strict=True)}


async def test_our_producers_on_both_clusters_pick_the_partition_java_picks_for_a_key(
    java: JavaClient, primary: str, secondary: str, topic_name: str
) -> None:
    java_topic, ours = f"{topic_name}-java", f"{topic_name}-ours"
    await create_topic(primary, java_topic, PARTITIONS)
    await create_topic(primary, ours, PARTITIONS)
    await create_topic(secondary, ours, PARTITIONS)

    by_java = partition_of(await java.produce(primary, ProducerSpec({}, keyed(java_topic))))
    app = App(
        topic_name, kafka={"bootstrap_servers": primary}, clusters={"other": {"bootstrap_servers": secondary}}
    )
    async with app.running():
        records = [ProducerRecord(ours, b"", key=key) for key in KEYS]
        by_primary = {
            key: m.partition for key, m in zip(KEYS, await app.producer.produce_many(records), strict=True)
        }
        on_other = await app.producers["other"].produce_many(records)
        by_secondary = {key: m.partition for key, m in zip(KEYS, on_other, strict=True)}

    assert set(by_java.values()) == set(range(PARTITIONS))  # the keys spread over every partition
    assert by_primary == by_java
    assert by_secondary == by_java


async def test_librdkafka_picks_javas_partitions_only_with_murmur2_random(
    java: JavaClient, primary: str, topic_name: str
) -> None:
    java_topic, rdkafka_topic = f"{topic_name}-java", f"{topic_name}-rdkafka"
    await create_topic(primary, java_topic, PARTITIONS)
    await create_topic(primary, rdkafka_topic, PARTITIONS)
    librdkafka = Librdkafka()

    by_java = partition_of(await java.produce(primary, ProducerSpec({}, keyed(java_topic))))
    by_default = partition_of(await librdkafka.produce(primary, ProducerSpec({}, keyed(rdkafka_topic))))
    by_murmur2 = partition_of(
        await librdkafka.produce(
            primary, ProducerSpec({"partitioner": "murmur2_random"}, keyed(rdkafka_topic))
        )
    )

    # librdkafka's default, consistent_random, is CRC-32 of the key modulo the partition count.
    assert by_default == {key: zlib.crc32(key) % PARTITIONS for key in KEYS}
    assert by_default != by_java
    assert by_murmur2 == by_java
