"""Foreign Kafka clients for the interop tests: the reference Java client and librdkafka.

Both speak the same small vocabulary: a ``ProducerSpec`` (client settings, plain records or
transactions) produced with ``produce``, and ``consume`` reading every partition of some
topics from the beginning, without a consumer group, until a number of records arrived.
Java runs tests/integration/java/InteropClient.java (compiled once per session); librdkafka
is the ``confluent-kafka`` package, whose blocking calls run in a worker thread so that an
app in the test's event loop keeps consuming meanwhile.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import anyio
import confluent_kafka
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from tests.kafka_clusters import localkafka

JAVA_SOURCE = Path(__file__).resolve().parent / "integration" / "java" / "InteropClient.java"
JAVA_LOGGING = JAVA_SOURCE.with_name("log4j2.properties")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")  # what compression.type is called everywhere
Header = tuple[str, bytes | None]


@dataclass(frozen=True)
class Record:
    """One record to send. ``partition=None`` leaves it to the client's partitioner."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[Header] = ()
    timestamp_ms: int | None = None
    partition: int | None = None


@dataclass(frozen=True)
class Transaction:
    outcome: Literal["commit", "abort"]
    records: Sequence[Record]


@dataclass(frozen=True)
class ProducerSpec:
    """One producer: its settings (dotted names, which Java and librdkafka share), then either
    plain ``records`` or ``transactions`` (which need a ``transactional.id``)."""

    config: Mapping[str, str] = field(default_factory=dict)
    records: Sequence[Record] = ()
    transactions: Sequence[Transaction] = ()


@dataclass(frozen=True)
class Sent:
    """Where the broker put a record, as the producing client reports it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[Header]
    timestamp_ms: int
    timestamp_type: str  # "CreateTime" or "LogAppendTime"


class ForeignClient(Protocol):
    name: str

    async def produce(self, bootstrap: str, *producers: ProducerSpec) -> list[Sent]: ...

    async def consume(
        self, bootstrap: str, topics: Sequence[str], count: int, config: Mapping[str, str] | None = None
    ) -> list[Consumed]: ...


# --- Java ----------------------------------------------------------------------------------


def _hex(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


def _unhex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


def _record_json(record: Record) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "key": _hex(record.key),
        "value": _hex(record.value),
        "headers": [[name, _hex(value)] for name, value in record.headers],
        "timestamp": record.timestamp_ms,
        "partition": record.partition,
    }


class JavaClient:
    """kafka-clients 4.4 (the brokers' own jars), through InteropClient.java."""

    name = "java"

    def __init__(self, classes: Path) -> None:
        self._classpath = f"{classes}:{localkafka.classpath()}"

    @classmethod
    def compile(cls, into: Path) -> JavaClient:
        """Compile the program once: a JVM launching the source file compiles it every time."""
        result = subprocess.run(
            ["javac", "-d", str(into), "-cp", localkafka.classpath(), str(JAVA_SOURCE)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"javac failed:\n{result.stderr}")
        return cls(into)

    async def _run(self, command: str, bootstrap: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
        result = await anyio.run_process(
            [
                localkafka.java(),
                f"-Dlog4j2.configurationFile={JAVA_LOGGING}",
                "-cp",
                self._classpath,
                "InteropClient",
                command,
                bootstrap,
            ],
            input=json.dumps(spec).encode(),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"InteropClient {command} failed ({result.returncode}):\n{result.stderr.decode()}"
            )
        return [json.loads(line) for line in result.stdout.decode().splitlines()]

    async def produce(self, bootstrap: str, *producers: ProducerSpec) -> list[Sent]:
        spec = {
            "producers": [
                {
                    "config": dict(p.config),
                    "records": [_record_json(r) for r in p.records],
                    **(
                        {
                            "transactions": [
                                {"outcome": t.outcome, "records": [_record_json(r) for r in t.records]}
                                for t in p.transactions
                            ]
                        }
                        if p.transactions
                        else {}
                    ),
                }
                for p in producers
            ]
        }
        return [
            Sent(line["topic"], line["partition"], line["offset"], line["timestamp"])
            for line in await self._run("produce", bootstrap, spec)
        ]

    async def consume(
        self, bootstrap: str, topics: Sequence[str], count: int, config: Mapping[str, str] | None = None
    ) -> list[Consumed]:
        spec = {"topics": list(topics), "count": count, "config": dict(config or {})}
        return [
            Consumed(
                line["topic"],
                line["partition"],
                line["offset"],
                _unhex(line["key"]),
                _unhex(line["value"]),
                [(name, _unhex(value)) for name, value in line["headers"]],
                line["timestamp"],
                line["timestamp_type"],
            )
            for line in await self._run("consume", bootstrap, spec)
        ]


# --- librdkafka ----------------------------------------------------------------------------


class Librdkafka:
    """librdkafka through confluent-kafka; its blocking calls run in a worker thread."""

    name = "librdkafka"

    async def produce(self, bootstrap: str, *producers: ProducerSpec) -> list[Sent]:
        sent: list[Sent] = []
        for spec in producers:
            sent += await anyio.to_thread.run_sync(_rdkafka_produce, bootstrap, spec)
        return sent

    async def consume(
        self, bootstrap: str, topics: Sequence[str], count: int, config: Mapping[str, str] | None = None
    ) -> list[Consumed]:
        return await anyio.to_thread.run_sync(
            _rdkafka_consume, bootstrap, list(topics), count, dict(config or {})
        )


def _rdkafka_produce(bootstrap: str, spec: ProducerSpec) -> list[Sent]:
    """Sent in the order of the spec (librdkafka reports deliveries batch by batch)."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, **spec.config})
    reports: dict[int, Sent | confluent_kafka.KafkaError] = {}

    def send(record: Record) -> None:
        index = len(reports)
        reports[index] = confluent_kafka.KafkaError(confluent_kafka.KafkaError._TIMED_OUT)  # until reported

        def delivered(error: confluent_kafka.KafkaError | None, message: confluent_kafka.Message) -> None:
            _, timestamp = message.timestamp()
            reports[index] = error or Sent(*_where(message), timestamp)

        options: dict[str, Any] = {"headers": list(record.headers)}
        if record.partition is not None:
            options["partition"] = record.partition
        if record.timestamp_ms is not None:
            options["timestamp"] = record.timestamp_ms
        producer.produce(record.topic, record.value, record.key, on_delivery=delivered, **options)

    for record in spec.records:
        send(record)
    if spec.transactions:
        producer.init_transactions()
        for transaction in spec.transactions:
            producer.begin_transaction()
            for record in transaction.records:
                send(record)
            producer.flush()  # every send has its offset before the outcome
            if transaction.outcome == "commit":
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    producer.flush(30)
    sent = [reports[index] for index in range(len(reports))]
    failures = [r for r in sent if isinstance(r, confluent_kafka.KafkaError)]
    if failures:
        raise RuntimeError(f"librdkafka failed to deliver: {failures}")
    return [r for r in sent if isinstance(r, Sent)]


def _where(message: confluent_kafka.Message) -> tuple[str, int, int]:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise RuntimeError(f"librdkafka gave a message without its place: {message!r}")
    return topic, partition, offset


def _rdkafka_consume(bootstrap: str, topics: list[str], count: int, config: dict[str, str]) -> list[Consumed]:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"interop-{uuid.uuid4().hex}",  # required, never joined: partitions are assigned
            "enable.auto.commit": False,
            **config,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=30)
        consumer.assign(
            [
                confluent_kafka.TopicPartition(topic, partition, confluent_kafka.OFFSET_BEGINNING)
                for topic in topics
                for partition in metadata.topics[topic].partitions
            ]
        )
        consumed: list[Consumed] = []
        polls = 0
        while len(consumed) < count:
            polls += 1
            if polls > 150:
                raise AssertionError(f"only {len(consumed)} of {count} records arrived from {topics}")
            for message in consumer.consume(num_messages=count - len(consumed), timeout=0.2):
                if message.error() is not None:
                    raise RuntimeError(f"librdkafka: {message.error()}")
                timestamp_type, timestamp = message.timestamp()
                consumed.append(
                    Consumed(
                        *_where(message),
                        message.key(),
                        message.value(),
                        cast("list[Header]", list(message.headers() or [])),  # pairs, as they came
                        timestamp,
                        "CreateTime"
                        if timestamp_type == confluent_kafka.TIMESTAMP_CREATE_TIME
                        else "LogAppendTime",
                    )
                )
        return consumed
    finally:
        consumer.close()


# --- what the broker holds -----------------------------------------------------------------

_CODEC_IDS = dict(enumerate(CODECS))


async def batch_codecs(bootstrap: str, topic: str, partition: int = 0) -> list[str]:
    """The compression codec of every record batch in the partition, as the broker stores and
    serves it: proof that a client compressed what it sent (a consumer cannot tell)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
        leader = metadata.leader_for_partition(TopicPartition(topic, partition))
        request = FetchRequest(1000, 1, 64 << 20, 0, [(topic, [(partition, 0, 64 << 20)])])
        response = await client.send(leader, request)
        [(_, [(_, error_code, *_, data)])] = response.topics  # the records come last in every version
        if error_code:
            raise RuntimeError(f"fetching {topic}[{partition}] failed with error code {error_code}")
        records = MemoryRecords(data)
        codecs = []
        while (batch := records.next_batch()) is not None:
            codecs.append(_CODEC_IDS[batch.compression_type])
        return codecs
    finally:
        await client.close()
