"""The Producer's paths over a stand-in aiokafka producer: what each send hands to aiokafka,
the events per message, and how ``produce_many`` accounts for every message."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio.lowlevel
import msgspec
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, KafkaTimeoutError, UnknownTopicOrPartitionError
from aiokafka.structs import RecordMetadata

from aiostream_kafka import App, MonitorEvent, ProduceError, ProducerRecord
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.runtime.clients import ProducerClient, RecordBatch
from tests.helpers import eventually


class Click(msgspec.Struct):
    user: str


class FakeKafka(ProducerClient):
    """Records every send; deliveries resolve when the test says so (``deliver``). It takes one
    send a message only: a batch asked for here means the wrong path was taken."""

    def __init__(self, fail_send_on: bytes | None = None, failure: BaseException | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.deliveries: list[asyncio.Future[RecordMetadata]] = []
        self.fail_send_on = fail_send_on
        self.failure = failure or KafkaTimeoutError("buffer full")

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        if value is not None and value == self.fail_send_on:
            raise self.failure
        self.sent.append(
            {"topic": topic, "value": value, "key": key, "partition": partition, "headers": headers}
        )
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> RecordBatch:
        raise AssertionError("a record batch was asked for where each message should be sent on its own")

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[RecordMetadata | None]:
        raise AssertionError("a record batch was sent where each message should be sent on its own")

    # Not transactional: as aiokafka's producer without a transactional_id, it refuses them.
    async def begin_transaction(self) -> None:
        raise IllegalOperation("You need to configure transaction_id to use transactions")

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        raise IllegalOperation("You need to configure transaction_id to use transactions")

    async def commit_transaction(self) -> None:
        raise IllegalOperation("You need to configure transaction_id to use transactions")

    async def abort_transaction(self) -> None:
        raise IllegalOperation("You need to configure transaction_id to use transactions")

    def deliver(self, index: int, error: BaseException | None = None) -> None:
        delivery = self.deliveries[index]
        if error is not None:
            delivery.set_exception(error)
        else:
            tp = TopicPartition(self.sent[index]["topic"], 0)
            delivery.set_result(RecordMetadata(tp.topic, 0, tp, index, 0, 0, 0))


def producer_with(kafka: FakeKafka, *events: str) -> tuple[Producer, list[MonitorEvent]]:
    app = App("p", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False, opentelemetry=False)
    seen: list[MonitorEvent] = []
    for name in events:
        app.monitor.subscribe(name, seen.append)
    producer = Producer(app.topology.primary, app.monitor, client_id="p")
    producer._kafka = kafka
    return producer, seen


async def later(kafka: FakeKafka, *steps: tuple[int, BaseException | None]) -> None:
    """Resolve the deliveries in the order given, each once it was sent, the producer running
    between two of them."""
    for index, error in steps:
        await eventually(lambda: len(kafka.deliveries) > index, what=f"send {index}")  # noqa: B023 - awaited at once
        kafka.deliver(index, error)
        await anyio.lowlevel.checkpoint()


async def test_produce_nowait_encodes_values_and_keys_and_returns_the_delivery() -> None:
    kafka = FakeKafka()
    producer, _ = producer_with(kafka)

    delivery = await producer.produce_nowait("clicks", Click("u1"), key=7, partition=2)
    raw = await producer.produce_nowait("clicks", b"raw", key=b"k")
    text = await producer.produce_nowait("clicks", "text", key="k", headers={"trace": "t"})

    assert [s["value"] for s in kafka.sent] == [b'{"user":"u1"}', b"raw", b"text"]
    assert [s["key"] for s in kafka.sent] == [b"7", b"k", b"k"]
    assert [s["partition"] for s in kafka.sent] == [2, None, None]
    assert [s["headers"] for s in kafka.sent] == [None, None, [("trace", b"t")]]
    assert (delivery, raw, text) == tuple(kafka.deliveries)


async def test_a_failed_send_raises_a_produce_error_naming_cluster_and_topic_caused_by_aiokafkas() -> None:
    producer, seen = producer_with(FakeKafka(fail_send_on=b"x"), "produce.failed")

    with pytest.raises(ProduceError) as raised:
        await producer.produce_nowait("clicks", b"x")

    error = raised.value
    assert str(error) == (
        "cannot produce to topic 'clicks' on cluster 'primary' (127.0.0.1:1): KafkaTimeoutError: buffer full"
    )
    assert (error.cluster, error.topic, error.retriable) == ("primary", "clicks", True)
    assert isinstance(error.__cause__, KafkaTimeoutError)
    assert isinstance(error, KafkaError)  # what `except KafkaError` caught before still catches it
    assert [(e.name, e["topic"], e["error"]) for e in seen] == [("produce.failed", "clicks", error)]


def test_a_produce_error_survives_pickling_with_what_it_names() -> None:
    error = ProduceError("cannot produce", cluster="primary", topic="clicks", retriable=True)

    copy = pickle.loads(pickle.dumps(error))

    assert (str(copy), copy.cluster, copy.topic, copy.retriable) == (
        "cannot produce",
        "primary",
        "clicks",
        True,
    )


INVALID_NAMES = ["", "clicks/eu", "clicks eu", ".", "..", "c" * 250, "clicks\n"]


@pytest.mark.parametrize("topic", INVALID_NAMES)
async def test_a_topic_name_no_broker_accepts_is_refused_at_once_on_every_path_and_nothing_is_sent(
    topic: str,
) -> None:
    kafka = FakeKafka()
    producer, seen = producer_with(kafka, "produce.failed")
    expected = (
        f"cannot produce to topic {topic!r} on cluster 'primary' (127.0.0.1:1): a topic name is "
        "1 to 249 of the characters a-z A-Z 0-9 . _ -, other than '.' and '..'; nothing was sent"
    )
    sends: list[Callable[[], Awaitable[object]]] = [
        lambda: producer.produce(topic, b"v"),
        lambda: producer.produce_nowait(topic, b"v"),
        lambda: producer.produce_nowait(topic, b"v", headers={"h": "1"}),
        lambda: producer.produce_many([ProducerRecord("clicks", b"ok"), ProducerRecord(topic, b"v")]),
    ]

    for send in sends:
        with pytest.raises(ProduceError) as raised:
            await send()
        assert str(raised.value) == expected
        assert (raised.value.cluster, raised.value.topic, raised.value.retriable) == ("primary", topic, False)

    assert kafka.sent == []
    assert [e["topic"] for e in seen] == [topic] * len(sends)


async def test_under_the_harness_a_partition_the_topic_lacks_is_refused_as_on_kafka() -> None:
    app = App("harnessed", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False, opentelemetry=False)
    async with app.testing(partitions=2) as t:
        with pytest.raises(ProduceError, match=r"'clicks' on cluster 'primary' .*: it has no partition 2;"):
            await app.producer.produce("clicks", b"v", partition=2)
        with pytest.raises(ProduceError, match="it has no partition 7;"):
            await app.producer.produce_many([ProducerRecord("clicks", b"v", partition=7)])
        assert t.produced("clicks") == []


async def test_a_job_on_a_topic_no_broker_accepts_fails_at_enqueue_naming_it() -> None:
    app = App("jobs", kafka={"bootstrap_servers": "127.0.0.1:1"}, log_events=False, opentelemetry=False)

    @app.job(topic="jobs default")
    async def send_email(to: str) -> None:
        raise AssertionError("never enqueued, never run")

    async with app.testing() as testing:
        with pytest.raises(
            ProduceError, match=r"^cannot produce to topic 'jobs default' on cluster 'primary'"
        ):
            await send_email.enqueue(to="ann@example.com")

        assert testing.produced("jobs default") == []


async def test_a_topic_the_cluster_does_not_have_says_so_after_aiokafkas_wait() -> None:
    missing = UnknownTopicOrPartitionError()
    producer, _ = producer_with(FakeKafka(fail_send_on=b"x", failure=missing))

    with pytest.raises(ProduceError) as raised:
        await producer.produce("orders", b"x")

    assert str(raised.value) == (
        "cannot produce to topic 'orders' on cluster 'primary' (127.0.0.1:1): the cluster has no such "
        "topic (or none of its partitions has a leader) and did not create it within the producer's "
        "request_timeout_ms; create it, or check that this is its cluster "
        "[[Error 3] UnknownTopicOrPartitionError]"
    )
    assert raised.value.__cause__ is missing
    assert raised.value.retriable  # aiokafka's own verdict: the topic may appear


async def test_a_topic_name_of_249_allowed_characters_is_sent() -> None:
    kafka = FakeKafka()
    producer, _ = producer_with(kafka)
    topic = "a.B_1-" + "x" * 243

    await producer.produce_nowait(topic, b"v")
    await producer.produce_nowait(topic, b"again")

    assert [s["topic"] for s in kafka.sent] == [topic, topic]


async def test_produce_nowait_reports_each_delivery_while_someone_listens() -> None:
    kafka = FakeKafka()
    producer, seen = producer_with(kafka, "message.produced", "produce.failed")

    await producer.produce_nowait("clicks", b"1")
    await producer.produce_nowait("clicks", b"2")
    kafka.deliver(0)
    kafka.deliver(1, KafkaTimeoutError("lost"))
    await eventually(lambda: len(seen) == 2, what="both deliveries reported")

    assert [(e.name, e.get("offset")) for e in seen] == [("message.produced", 0), ("produce.failed", None)]


async def test_produce_many_returns_every_delivery_in_order_whatever_order_they_resolve_in() -> None:
    kafka = FakeKafka()
    producer, seen = producer_with(kafka, "message.produced")

    waiting = asyncio.ensure_future(
        producer.produce_many(ProducerRecord("clicks", Click(f"u{n}"), key=n) for n in range(4))
    )
    await later(kafka, (2, None), (3, None), (0, None), (1, None))
    results = await waiting

    assert [m.offset for m in results] == [0, 1, 2, 3]
    assert [s["value"] for s in kafka.sent] == [b'{"user":"u%d"}' % n for n in range(4)]
    assert [e["offset"] for e in seen] == [0, 1, 2, 3]


async def test_produce_many_accounts_for_every_message_then_raises_the_first_failure() -> None:
    kafka = FakeKafka()
    producer, seen = producer_with(kafka, "message.produced", "produce.failed")
    first, second = KafkaTimeoutError("first"), KafkaTimeoutError("second")

    waiting = asyncio.ensure_future(
        producer.produce_many(ProducerRecord("clicks", str(n).encode()) for n in range(4))
    )
    await later(kafka, (3, second), (0, None), (1, first), (2, None))
    with pytest.raises(ProduceError) as raised:
        await waiting

    assert raised.value.__cause__ is first
    assert [(e.name, getattr(e.get("error"), "__cause__", None)) for e in seen] == [
        ("message.produced", None),
        ("produce.failed", first),
        ("message.produced", None),
        ("produce.failed", second),
    ]
    assert seen[1]["error"] is raised.value


async def test_produce_many_reports_a_cancelled_delivery_as_a_failure() -> None:
    kafka = FakeKafka()
    producer, seen = producer_with(kafka, "message.produced", "produce.failed")  # one send a message

    waiting = asyncio.ensure_future(producer.produce_many([ProducerRecord("clicks", b"a")]))
    await eventually(lambda: bool(kafka.deliveries), what="the send")
    kafka.deliveries[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    assert [e.name for e in seen] == ["produce.failed"]


async def test_produce_many_with_headers_or_someone_watching_each_send_takes_the_full_path() -> None:
    kafka = FakeKafka()
    producer, _ = producer_with(kafka)
    contexts: list[dict[str, Any]] = []

    def add_trace(event: MonitorEvent) -> None:
        event["headers"].append(("traceparent", b"00-1"))
        contexts.append(event["context"])

    producer._monitor.subscribe("message.producing", add_trace)
    waiting = asyncio.ensure_future(
        producer.produce_many(
            [ProducerRecord("clicks", b"a"), ProducerRecord("clicks", b"b", headers=[("h", "1")])]
        )
    )
    await later(kafka, (0, None), (1, None))
    await waiting

    assert [s["headers"] for s in kafka.sent] == [
        [("traceparent", b"00-1")],
        [("h", b"1"), ("traceparent", b"00-1")],
    ]
    assert len(contexts) == 2


def test_a_producer_record_is_immutable_and_compares_by_value() -> None:
    record = ProducerRecord("clicks", b"a", key="k", partition=1)

    with pytest.raises(AttributeError):
        record.topic = "other"  # type: ignore[misc]
    assert record == ProducerRecord("clicks", b"a", key="k", partition=1)
    assert (record.headers, record.timestamp_ms) == (None, None)


async def test_produce_many_of_nothing_sends_nothing_even_on_a_stopped_producer() -> None:
    producer, _ = producer_with(FakeKafka())
    await producer.stop()

    assert await producer.produce_many([]) == []
