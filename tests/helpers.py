"""Small tools the Kafka tests share: waiting for a condition, recording monitor events,
servers on free ports that misbehave as a broker might.

Tests wait for what proves a thing happened (an event, a record, a committed offset), never
for a length of time. A time limit is only ever a guard against waiting for ever: generous
enough for a loaded machine, and saying what was awaited when it runs out."""

from __future__ import annotations

import asyncio
import errno
import random
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from aiostream_kafka import App, MonitorEvent
from aiostream_kafka.runtime.clock import Clock

T = TypeVar("T")


async def eventually(condition: Callable[[], bool], within: float = 30.0, what: str = "condition") -> None:
    """Wait until ``condition()`` holds; fail the test, saying what, after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await anyio.sleep(0.05)


async def eventually_equal(
    read: Callable[[], Awaitable[T]], expected: T, within: float = 30.0, what: str = "value"
) -> None:
    """Wait until ``await read()`` gives ``expected``; fail showing the last value it gave."""
    deadline = time.monotonic() + within
    while (value := await read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}: {value!r} != {expected!r}")
        await anyio.sleep(0.2)


async def eventually_true(
    condition: Callable[[], Awaitable[bool]], within: float = 60.0, what: str = "condition"
) -> None:
    """``eventually`` for a condition that has to ask a broker."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await anyio.sleep(0.2)


@contextmanager
def within(seconds: float, what: str) -> Iterator[None]:
    """A guard against waiting for ever on the block: past ``seconds``, it is cancelled and the
    test fails saying what it waited for (a TimeoutError raised inside passes through as is)."""
    with anyio.move_on_after(seconds) as guard:
        yield
    if guard.cancelled_caught:
        raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class Events:
    """Every monitor event an app emits, for assertions."""

    def __init__(self, app: App) -> None:
        self.all: list[MonitorEvent] = []
        app.monitor.subscribe("*", self.all.append)

    def named(self, name: str, **match: Any) -> list[MonitorEvent]:
        return [e for e in self.all if e.name == name and all(e.get(k) == v for k, v in match.items())]

    def count(self, name: str, **match: Any) -> int:
        return len(self.named(name, **match))


async def web_page(ui: Any, path: str) -> httpx.Response:
    """GET ``path`` from the Web UI's ASGI app ``ui``, then close the UI, as its lifespan would:
    a page test asks for one page and has no server to shut it down."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ui), base_url="http://ui") as client:
        page = await client.get(path)
    await ui.state.ui.aclose()
    return page


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Create ``topic``; return once the broker's metadata shows every partition with a leader
    (the controller acknowledges first, and a loaded broker learns of it a little later: a
    test asking about the topic at once would see none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])

        async def led() -> bool:
            [described] = await admin.describe_topics([topic])
            found = described["partitions"] if described["error_code"] == 0 else []
            return len(found) == partitions and all(p["leader"] >= 0 for p in found)

        await eventually_true(led, what=f"topic {topic!r} in the metadata")
    finally:
        await admin.close()


async def forwarding_topics(bootstrap: str, topic: str, *values: bytes) -> str:
    """Create ``topic``, holding ``values`` on its partition 0, and ``<topic>.out`` for a route
    to forward them to; the out topic's name."""
    out = f"{topic}.out"
    await create_topic(bootstrap, topic)
    await create_topic(bootstrap, out)
    await produce(bootstrap, topic, *values, partition=0)
    return out


async def committed_offsets(bootstrap: str, group_id: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


async def end_offset(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The partition's end offset: the high watermark, past its records and transaction markers."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def total_end_offset(
    bootstrap: str, topic: str, partitions: int, *, read_committed: bool = False
) -> int:
    """The sum of the partitions' end offsets (read committed: their last stable offsets,
    which count markers and aborted records before them): cheap, and enough to tell how far
    a pipeline writing ``topic`` is."""
    isolation = "read_committed" if read_committed else "read_uncommitted"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def produce(
    bootstrap: str, topic: str, *values: bytes, partition: int | None = None, timestamp_ms: int | None = None
) -> None:
    """Write raw values with a plain aiokafka producer, outside any app (``timestamp_ms``: each
    record's create time, instead of the clock's)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=partition, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


async def read_records(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record in partition 0 of ``topic``, read without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records: list[ConsumerRecord[bytes, bytes]] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000, max_records=100)
            records += batch.get(partition, [])
        return records
    finally:
        await consumer.stop()


async def read_every_partition(
    bootstrap: str, topic: str, partitions: int
) -> dict[tuple[int, int], ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic``'s ``partitions``, by (partition, offset), read without a
    consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: dict[tuple[int, int], ConsumerRecord[bytes, bytes]] = {}
        while len(found) < sum(ends.values()):  # a fresh topic: its offsets begin at 0
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found.update(((r.partition, r.offset), r) for r in records)
        return found
    finally:
        await consumer.stop()


async def read_committed(
    bootstrap: str, topic: str, partitions: int = 1, *, isolation_level: str = "read_committed"
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic``'s ``partitions`` a read-committed consumer sees (transaction
    markers and aborted records take offsets, so this reads up to each partition's end
    offset, as the isolation level reports it, rather than counting records)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in assigned]):
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value in partition 0 of ``topic``."""
    return [record.value for record in await read_records(bootstrap, topic)]


async def wait_for_records(
    bootstrap: str, topic: str, count: int = 1, within: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Partition 0 of ``topic`` once it holds at least ``count`` records (it may not exist yet)."""
    deadline = time.monotonic() + within
    while True:
        try:
            records = await read_records(bootstrap, topic)
        except KeyError:  # the topic does not exist yet
            records = []
        if len(records) >= count:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {count} record(s) on {topic}")
        await anyio.sleep(0.2)


#: Ports tests may take: below the kernel's ephemeral range, which other tests' clients use.
TEST_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port on 127.0.0.1 below 32768 that nothing listens on: a connection to it is refused."""
    for port in random.sample(TEST_PORTS, 100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != errno.ECONNREFUSED:
                continue  # something listens there
        with socket.socket() as taken:
            try:
                taken.bind(("127.0.0.1", port))
            except OSError:
                continue  # bound (not listening yet) by someone else
        return port
    raise AssertionError(f"no free port among 100 tried in {TEST_PORTS}")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def tcp_server(handle: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A server on a free port below 32768 running ``handle`` for each connection; yields its
    address, and closes every connection it still holds at the end."""
    connections: list[tuple[asyncio.StreamWriter, asyncio.Task[object] | None]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append((writer, asyncio.current_task()))
        await handle(reader, writer)

    server = None
    while server is None:
        try:
            server = await asyncio.start_server(tracked, "127.0.0.1", free_port(), ssl=tls)
        except OSError as error:  # taken between the check and the bind
            if error.errno != errno.EADDRINUSE:
                raise
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer, _ in connections:
            writer.close()
        await asyncio.gather(*(task for _, task in connections if task is not None), return_exceptions=True)
        await server.wait_closed()


async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer: a broker that hangs."""
    await reader.read()  # everything, until the client hangs up


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close each connection at once, as a listener that refuses the protocol spoken."""
    writer.close()


def client_certificate_files(directory: Path, key_password: str) -> dict[str, str]:
    """A throwaway CA and a client certificate in ``directory``: ``ca.pem``, ``client.pem``,
    its key in clear (``client.key``) and encrypted with ``key_password`` (``encrypted.key``)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=client")  # fmt: skip
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.pem", "-days", "2")  # fmt: skip
    openssl(
        "pkey", "-in", "client.key", "-aes256", "-passout", f"pass:{key_password}", "-out", "encrypted.key"
    )
    return {name: str(directory / name) for name in ("ca.pem", "client.pem", "client.key", "encrypted.key")}


class FastClock(Clock):
    """Time running ``speed`` times faster from ``origin`` (epoch seconds), the same in every
    process given the same two: recurring jobs tick every minute of it without a test
    waiting minutes. Kafka record timestamps stay real (producers stamp them)."""

    def __init__(self, origin: float, speed: float, *, ahead: float = 0.0) -> None:
        self.origin = origin
        self.speed = speed
        self.ahead = ahead  # seconds of it already passed: downtime, for a restarted app

    def now(self) -> float:
        return self.origin + self.ahead + (time.time() - self.origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds / self.speed)

    async def tick(self, seconds: float) -> None:
        await anyio.sleep(seconds / self.speed)

    async def tick_until(self, when: float) -> None:
        await anyio.sleep(max(0.0, when - self.now()) / self.speed)
