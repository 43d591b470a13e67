"""Producing on real Kafka: one producer per cluster, an explicit primary, msgspec encoding."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError

from aiostream_kafka import App, NotRunningError, ProduceError, ProducerRecord, UnknownClusterError
from aiostream_kafka.admin import TopicSpec
from aiostream_kafka.errors import ClusterUnreachableError
from tests.helpers import Events, eventually, free_port, read_all


class Click(msgspec.Struct):
    user: str
    x: int


def two_cluster_app(primary: str, secondary: str, **options: object) -> App:
    return App(
        "producing",
        kafka={"bootstrap_servers": primary},
        clusters={"analytics": {"bootstrap_servers": secondary, "acks": "all", "compression_type": "gzip"}},
        **options,  # type: ignore[arg-type]
    )


async def test_the_primary_producer_writes_to_the_primary_and_named_ones_to_their_cluster(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = two_cluster_app(primary, secondary)
    async with app.running():
        to_primary = await app.producer.produce(topic_name, Click("ann", 1), key="ann")
        to_secondary = await app.producers["analytics"].produce(topic_name, Click("bob", 2))

    assert (to_primary.topic, to_primary.offset) == (topic_name, 0)
    assert (to_secondary.topic, to_secondary.offset) == (topic_name, 0)
    assert await read_all(primary, topic_name) == [b'{"user":"ann","x":1}']
    assert await read_all(secondary, topic_name) == [b'{"user":"bob","x":2}']


async def test_the_primary_producer_can_point_at_another_cluster(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = two_cluster_app(primary, secondary, producer_cluster="analytics")
    async with app.running():
        assert app.producer is app.producers["analytics"]
        await app.producer.produce(topic_name, b"where am I")

    assert await read_all(secondary, topic_name) == [b"where am I"]
    assert await read_all(primary, topic_name) == []


async def test_key_headers_and_partition_reach_the_broker(primary: str, topic_name: str) -> None:
    app = App("details", kafka={"bootstrap_servers": primary})
    received = []

    @app.route(topic_name)
    async def handle(messages):  # type: ignore[no-untyped-def]
        received.extend(messages)

    async with app.running():
        await app.producer.produce(
            topic_name, "text", key=42, headers={"trace": "abc", "raw": b"\x00"}, partition=0
        )
        await eventually(lambda: bool(received), what="the message")

    [message] = received
    assert (message.key, message.value, message.partition) == (b"42", b"text", 0)
    assert message.headers == {"trace": b"abc", "raw": b"\x00"}


async def test_produce_nowait_and_produce_many_keep_many_messages_in_flight(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = two_cluster_app(primary, secondary)
    async with app.running():
        futures = [await app.producer.produce_nowait(topic_name, {"n": n}) for n in range(50)]
        nowait = await asyncio.gather(*futures)
        many = await app.producers["analytics"].produce_many(
            ProducerRecord(topic_name, Click("c", n), key=str(n)) for n in range(50)
        )

    assert [m.offset for m in nowait] == list(range(50))
    assert [m.offset for m in many] == list(range(50))
    assert len(await read_all(secondary, topic_name)) == 50


async def test_every_producer_is_instrumented_not_only_the_primary(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = two_cluster_app(primary, secondary)
    events = Events(app)
    async with app.running():
        await app.producer.produce(topic_name, b"1")
        await app.producers["analytics"].produce(topic_name, b"2")

    produced = events.named("message.produced", topic=topic_name)
    assert sorted(e["cluster"] for e in produced) == ["analytics", "primary"]


async def test_producers_exist_only_while_the_app_runs(primary: str, topic_name: str) -> None:
    app = App("lifecycle", kafka={"bootstrap_servers": primary})
    with pytest.raises(NotRunningError, match=r"await app\.start"):
        _ = app.producer
    async with app.running():
        producer = app.producer
        with pytest.raises(UnknownClusterError, match="no producer for cluster 'nope'; the app has: primary"):
            _ = app.producers["nope"]
    with pytest.raises(NotRunningError, match="stopped"):
        await producer.produce(topic_name, b"too late")


async def test_stop_flushes_what_was_queued(primary: str, topic_name: str) -> None:
    app = App("flush", kafka={"bootstrap_servers": primary, "linger_ms": 500})
    async with app.running():
        for n in range(20):
            await app.producer.produce_nowait(topic_name, str(n))

    assert len(await read_all(primary, topic_name)) == 20


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_every_codec_round_trips_from_a_clusters_producer_to_a_route(
    secondary: str, topic_name: str, codec: str
) -> None:
    app = App("codecs", kafka={"bootstrap_servers": secondary, "compression.type": codec})
    received: list[bytes | None] = []

    @app.route(topic_name)
    async def handle(messages):  # type: ignore[no-untyped-def]
        received.extend(m.value for m in messages)

    async with app.running():
        await app.producer.produce_many([ProducerRecord(topic_name, {"n": n}) for n in range(20)])
        await eventually(lambda: len(received) == 20, what=f"20 {codec} messages")

    assert received == [b'{"n":%d}' % n for n in range(20)]


# --- what a failed send says -------------------------------------------------------------


async def test_a_topic_name_no_broker_accepts_fails_at_once_naming_topic_and_cluster(primary: str) -> None:
    app = App("bad-names", kafka={"bootstrap_servers": primary})
    async with app.running():
        with pytest.raises(ProduceError) as raised:
            await app.producer.produce("orders/eu", b"never sent")  # aiokafka alone: ~40 s, no name

    message = str(raised.value)
    assert message.startswith(f"cannot produce to topic 'orders/eu' on cluster 'primary' ({primary}): ")
    assert message.endswith("nothing was sent")


async def test_a_partition_the_topic_lacks_is_refused_on_every_path_naming_topic_and_partitions(
    primary: str, topic_name: str
) -> None:
    app = App("no-such-partition", kafka={"bootstrap_servers": primary})
    async with app.admin:
        await app.admin.create_topics([TopicSpec(topic_name, partitions=2)])
    async with app.running():
        await app.producer.produce(topic_name, b"known", partition=1)  # aiokafka has the topic's metadata
        sends: list[Callable[[], Awaitable[object]]] = [
            lambda: app.producer.produce(topic_name, b"v", partition=5),
            lambda: app.producer.produce_nowait(topic_name, b"v", partition=5),
            lambda: app.producer.produce_many([ProducerRecord(topic_name, b"v", partition=5)]),
        ]
        errors = []
        for send in sends:
            with pytest.raises(ProduceError) as raised:
                await send()
            errors.append(raised.value)

    expected = (
        f"cannot produce to topic {topic_name!r} on cluster 'primary' ({primary}): it has no partition 5 "
        "(it has 2: 0 to 1); leave partition= out, or add partitions to the topic; the message was not sent"
    )
    assert [str(error) for error in errors] == [expected] * 3
    named = {(error.cluster, error.topic, error.retriable) for error in errors}
    assert named == {("primary", topic_name, False)}


async def test_a_message_over_max_request_size_names_cluster_topic_size_and_the_setting(
    primary: str, topic_name: str
) -> None:
    app = App("too-big", kafka={"bootstrap_servers": primary, "max.request.size": 2000})
    async with app.running():
        with pytest.raises(ProduceError) as raised:
            await app.producer.produce(topic_name, b"x" * 3000)
        with pytest.raises(ProduceError) as many:
            await app.producer.produce_many([ProducerRecord(topic_name, b"x" * 3000)])

    size = 3086  # 3000 bytes of value, and the record batch around it
    for error in (raised.value, many.value):
        assert str(error) == (
            f"cannot produce to topic {topic_name!r} on cluster 'primary' ({primary}): the message is "
            f"{size} bytes encoded, over the producer's max_request_size of 2000 bytes: raise "
            "max_request_size (max.request.size) in the settings of cluster 'primary' (and the "
            "topic's max.message.bytes with it), or send less"
        )
        assert isinstance(error.__cause__, MessageSizeTooLargeError)
        assert f"The message is {size} bytes when serialized" in str(error.__cause__)  # aiokafka's count
        assert not error.retriable


async def test_a_message_over_the_topics_max_message_bytes_names_the_topic_setting(
    primary: str, topic_name: str
) -> None:
    app = App("too-big-for-the-topic", kafka={"bootstrap_servers": primary})
    events = Events(app)
    async with app.admin:
        await app.admin.create_topics([TopicSpec(topic_name, settings={"max.message.bytes": "1000"})])
    async with app.running():
        small = await app.producer.produce(topic_name, b"fits")
        with pytest.raises(ProduceError) as raised:
            await app.producer.produce(topic_name, b"x" * 2000, key="k")
        with pytest.raises(ProduceError) as many:
            await app.producer.produce_many([ProducerRecord(topic_name, b"x" * 2000, key="k")])
        delivery = await app.producer.produce_nowait(topic_name, b"x" * 2000)
        with pytest.raises(KafkaError) as later:  # the future is aiokafka's own
            await delivery

    assert small.offset == 0
    for error in (raised.value, many.value):
        assert str(error) == (
            f"cannot produce to topic {topic_name!r} on cluster 'primary' ({primary}): the broker "
            "refused the batch holding the message (2087 bytes encoded) as larger than the topic "
            "allows: raise the topic's max.message.bytes (its default is the broker's "
            f"message.max.bytes), or send less [{error.__cause__}]"
        )
        assert isinstance(error.__cause__, MessageSizeTooLargeError)
    assert isinstance(later.value, MessageSizeTooLargeError)
    failed = events.named("produce.failed", topic=topic_name)
    assert [e["error"] for e in failed[:2]] == [raised.value, many.value]
    assert "refused the batch holding the message as larger than the topic allows" in str(failed[2]["error"])
    assert await read_all(primary, topic_name) == [b"fits"]


async def test_a_send_to_a_cluster_nothing_listens_for_says_it_refused_and_names_the_topic(
    primary: str, topic_name: str
) -> None:
    address = f"127.0.0.1:{free_port()}"
    app = App("away", kafka={"bootstrap_servers": primary}, clusters={"gone": {"bootstrap_servers": address}})
    async with app.running():  # a cluster that is down does not stop the start
        gone = app.producers["gone"]
        sends: list[Callable[[], Awaitable[object]]] = [
            lambda: gone.produce(topic_name, b"x"),
            lambda: gone.produce_nowait(topic_name, b"x"),
            lambda: gone.produce_many([ProducerRecord(topic_name, b"x")]),
        ]
        for send in sends:
            with pytest.raises(ClusterUnreachableError) as raised:
                await send()

            message = str(raised.value)
            assert message.startswith(
                f"cannot connect to cluster 'gone' ({address}, PLAINTEXT): connection refused at {address}: "
                "nothing listens there"
            )
            assert message.endswith(f"; while producing to topic {topic_name!r}")
            assert raised.value.topic == topic_name
            cause = raised.value.__cause__
            assert cause is not None
            assert isinstance(cause.__cause__, KafkaConnectionError)  # the chain, kept
