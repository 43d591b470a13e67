"""``async with app.testing() as t``: the app's own runtime on in-memory clusters.

Nothing here re-implements consuming. The harness starts the app as ``app.start()`` always
does, with two things swapped on the app: its Kafka clients (in-memory clusters, one per
cluster of the topology) and its clock (waits are skipped by jumping time). So a fed
message goes through the same Listener, batching, decoding, retry and dead-letter policy,
offset commits and monitor events as in production, and what handlers produce lands in
the in-memory clusters, where routed topics are consumed onward. ``app.admin`` answers
from the same clusters meanwhile (``testing/admin.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import msgspec
from aiokafka import TopicPartition
from aiokafka.structs import RecordMetadata

from aiostream_kafka.codecs import Encoder, build_decoder
from aiostream_kafka.contracts.testing import check_harness
from aiostream_kafka.errors import ConfigError, NotRunningError
from aiostream_kafka.instrumentation.monitor import MonitorEvent
from aiostream_kafka.jobs.envelope import JobEnvelope
from aiostream_kafka.messages import Message, from_records
from aiostream_kafka.routing.topology import RoutedTopic, Topology
from aiostream_kafka.testing.clients import MemoryClients
from aiostream_kafka.testing.clock import VirtualClock
from aiostream_kafka.testing.memory import MemoryCluster

if TYPE_CHECKING:
    from aiostream_kafka.app import App

#: How many times in a row the app may go quiet with nothing left to do before it counts as settled.
QUIET_ROUNDS = 5
#: Clock jumps one ``drain()`` may make before the app counts as looping forever.
MAX_JUMPS = 10_000


class TestApp:
    """Run ``app`` without a broker: ``feed`` routes, inspect what was produced, committed and emitted.

    - ``partitions``: partitions of a topic nobody declared (a route's ``config=`` or
      ``app.topics.declare`` gives a topic its own count).
    - ``attempts``: how often a message may fail on a route with no dead-letter queue
      before ``feed``/``drain`` raise the handler's error (in production it would be
      retried forever, holding its partition up).
    - ``timeout``: real seconds one ``feed``/``drain`` may take.
    """

    __test__ = False  # not a pytest test class, whatever a test module imports

    def __init__(self, app: App, *, partitions: int = 1, attempts: int = 3, timeout: float = 10.0) -> None:
        check_harness(partitions=partitions, attempts=attempts, timeout=timeout)
        self.app = app
        self.clock = VirtualClock()
        self.events = RecordedEvents()
        self._partitions = partitions
        self._attempts = attempts
        self._timeout = timeout
        self._failures: Counter[tuple[str, str, int, int]] = Counter()
        self._last_error: dict[tuple[str, str, int, int], BaseException] = {}
        self._jobs_run: set[str] = set()
        self._saved: tuple[Any, Any, Any] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self.clusters: dict[str, MemoryCluster] = {}
        self._clients: MemoryClients | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> TestApp:
        app = self.app
        if app.state in ("starting", "running", "stopping"):
            raise NotRunningError(f"app.testing() needs an app that is not running; this one is {app.state}")
        topology = app.topology
        self.clusters = {
            name: MemoryCluster(name, default_partitions=self._partitions) for name in topology.clusters
        }
        for name, moved in topology.moved.items():  # a failed-over cluster's name is its replica's
            self.clusters[name] = self.clusters[moved.replica]
        for declared in topology.declared:
            config = declared.config
            self.clusters[declared.cluster].create_topic(
                declared.name, config.partitions, config.replication_factor
            )
        self._clients = MemoryClients(self.clusters, self.clock)
        # app.admin is made on first use with the clients of the time: one of memory for the test
        self._saved = (app.clients, app.clock, app._admin)
        app.clients, app.clock, app._admin = self._clients, self.clock, None
        self._unsubscribe = app.monitor.subscribe("*", self._record)
        try:
            await app.start()
            with anyio.fail_after(self._timeout):
                while len(self.events.named("listener.started")) < len(topology.subscription_groups):
                    self._raise_failure()
                    await anyio.sleep(0.001)
            await self.drain()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        try:
            await self.app.stop()
        finally:
            self._unsubscribe()
            if self._saved is not None:
                self.app.clients, self.app.clock, self.app._admin = self._saved

    def _record(self, event: MonitorEvent) -> None:
        self.events.append(event)
        if event.name == "batch.failed":
            key = (event["cluster"], event["topic"], event["partition"], event["offset"])
            self._failures[key] += 1
            self._last_error[key] = event["error"]

    # --- feeding and waiting -------------------------------------------------------------

    async def feed(
        self,
        topic: str,
        payloads: Sequence[Any],
        *,
        key: Any = None,
        headers: Any = None,
        partition: int | None = None,
        cluster: str | None = None,
        timestamp_ms: int | None = None,
    ) -> list[RecordMetadata]:
        """Append ``payloads`` to a routed topic as another service would, then ``drain()``.

        Payloads are encoded in the route's format (bytes and str go as they are).
        ``partition``: as a producer would choose it when not given (by key, else round robin).
        ``cluster``: needed only when the topic is routed on several clusters.
        """
        if isinstance(payloads, (str, bytes, bytearray)) or not isinstance(payloads, Sequence):
            raise TypeError(
                f"feed({topic!r}, payloads): payloads is a list of messages; wrap a single one in [...]"
            )
        target = self._routed(topic, cluster)
        memory = self.clusters[target.cluster]
        encoder = Encoder(target.route.format)
        encoded_key, encoded_headers = encoder.key(key), encoder.headers(headers)
        timestamp = timestamp_ms if timestamp_ms is not None else int(self.clock.now() * 1000)
        sent = [
            memory.append(
                topic,
                encoder.value(payload),
                key=encoded_key,
                headers=encoded_headers,
                partition=partition,
                timestamp_ms=timestamp,
            )
            for payload in payloads
        ]
        await self.drain()
        return sent

    async def drain(self) -> None:
        """Wait until the app has nothing left to do: every fed and produced message consumed
        by the routes that consume it, retries and timed pauses included (time jumps).

        Raises the handler's error when a message on a route without a dead-letter queue has
        failed ``attempts`` times, and a fatal error that ended the app.
        """
        with anyio.fail_after(self._timeout):
            for _ in range(MAX_JUMPS):
                await self._quiet()
                self._raise_failure()
                if not self.clock.jump():
                    return
        raise RuntimeError(
            f"the app kept scheduling work: {MAX_JUMPS} timed waits in one drain() "
            f"(a handler that pauses itself over and over?)"
        )

    async def _quiet(self) -> None:
        """Until every consumer waits for data that is not there, and no recurring job is due,
        several checks in a row."""
        assert self._clients is not None
        quiet = 0
        while quiet < QUIET_ROUNDS:
            await anyio.lowlevel.checkpoint()
            settled = all(
                c.waiting and not c.fetchable() for c in self._clients.consumers if c.running
            ) and all(s.settled for s in self.app.jobs.schedulers)
            quiet = quiet + 1 if settled else 0
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self.app.failure is not None:
            raise self.app.failure
        for scheduler in self.app.jobs.schedulers:
            if scheduler.failure is not None:
                raise scheduler.failure
        for key, count in self._failures.items():
            cluster, topic, partition, offset = key
            if count >= self._attempts and not self._has_dead_letter_queue(cluster, topic):
                error = self._last_error[key]
                self._failures[key] = 0  # raised once per `attempts` failures, not on every check
                note = (
                    f"aiostream-kafka testing: {topic}[{partition}]@{offset} on cluster {cluster!r} failed "
                    f"{count} times and its route has no dead-letter queue, so it would block that "
                    f"partition in production"
                )
                if hasattr(error, "add_note"):
                    error.add_note(note)
                raise error

    def _has_dead_letter_queue(self, cluster: str, topic: str) -> bool:
        return any(
            t.route.dead_letter_queue is not None
            for t in self._topology.topics
            if t.name == topic and t.cluster == cluster
        )

    # --- what happened -------------------------------------------------------------------

    def produced(self, topic: str, *, cluster: str | None = None, payload: Any = None) -> list[Message[Any]]:
        """What the app's producers sent to ``topic`` on ``cluster`` (the primary producer's
        cluster by default), as messages: key, headers, partition, offset and ``payload``.

        Payloads decode as ``payload`` (a type) when given, else as the route for that topic
        decodes them, else as plain data in the app's producer format.
        """
        name = self._cluster_name(cluster)
        memory = self.clusters[name]
        records = [r for r in memory.produced if r.topic == topic and memory.visible(r)]
        return from_records(records, name, self._decoder(topic, name, payload))

    def aborted(self, topic: str, *, cluster: str | None = None, payload: Any = None) -> list[Message[Any]]:
        """What the app's producers sent to ``topic`` in transactions that aborted (an
        exactly-once batch that failed, a ``producer.transaction()`` that raised): never
        visible to read-committed readers, and never in ``produced``."""
        name = self._cluster_name(cluster)
        memory = self.clusters[name]
        sent = [r for r in memory.produced if r.topic == topic]
        records = [r for r in sent if (r.topic, r.partition, r.offset) in memory.aborted]
        return from_records(records, name, self._decoder(topic, name, payload))

    def dead_lettered(self, topic: str | None = None, *, cluster: str | None = None) -> list[DeadLetter]:
        """Messages the app sent to dead-letter queues, with why; ``topic``: only those that came
        from that source topic (and ``cluster``: from that cluster)."""
        found = []
        queues = {
            (t.dead_letter_cluster, t.route.dead_letter_queue.topic)
            for t in self._topology.topics
            if t.route.dead_letter_queue is not None and t.route.dead_letter_queue.topic is not None
        }
        for queue_cluster, queue_topic in sorted(queues):
            for message in self.produced(queue_topic, cluster=queue_cluster, payload=bytes):
                letter = DeadLetter(message)
                if topic is not None and letter.source_topic != topic:
                    continue
                if cluster is not None and letter.source_cluster != cluster:
                    continue
                found.append(letter)
        return found

    def committed(
        self, topic: str, partition: int = 0, *, cluster: str | None = None, group_id: str | None = None
    ) -> int | None:
        """The offset committed for ``topic``'s partition by the group consuming it (the next
        offset to read), or None if nothing was committed."""
        target = self._routed(topic, cluster) if group_id is None else None
        name = target.cluster if target is not None else self._cluster_name(cluster)
        group = group_id or self._group_of(topic, name)
        return self.clusters[name].committed.get((group, TopicPartition(topic, partition)))

    def _group_of(self, topic: str, cluster: str) -> str:
        for group in self._topology.subscription_groups:
            if group.cluster == cluster and topic in group.topic_names:
                return group.group_id
        raise ConfigError(f"no route consumes {topic!r} on cluster {cluster!r}; pass group_id=")

    # --- jobs ----------------------------------------------------------------------------

    def jobs(self, name: str | None = None) -> list[JobEnvelope]:
        """Jobs enqueued during the test, in order (``name``: only that job's)."""
        found = []
        for topic, cluster in sorted({(job.topic, job.cluster) for job in self.app.jobs}):
            memory = self.clusters[cluster]
            for record in memory.produced:
                if record.topic == topic and record.value is not None and memory.visible(record):
                    envelope = msgspec.json.decode(record.value, type=JobEnvelope)
                    if name is None or envelope.name == name:
                        found.append(envelope)
        return sorted(found, key=lambda envelope: envelope.enqueued_at)

    async def run_jobs(self) -> list[JobEnvelope]:
        """Run the enqueued jobs no route of this app consumes (a worker elsewhere would), in
        order, once each; a delayed job first moves the clock to its time. Jobs this app
        consumes itself have run already, through their route. Returns the jobs run."""
        consumed = {(t.cluster, t.name) for t in self._topology.topics}
        by_name = {job.name: job for job in self.app.jobs}
        ran = []
        for envelope in self.jobs():
            job = by_name.get(envelope.name)
            if job is None or envelope.id in self._jobs_run or (job.cluster, job.topic) in consumed:
                continue
            self._jobs_run.add(envelope.id)
            if envelope.run_at is not None and envelope.run_at > self.clock.now():
                self.clock.advance(envelope.run_at - self.clock.now())
            await job.run(envelope)
            ran.append(envelope)
            await self.drain()
        return ran

    # --- lookups -------------------------------------------------------------------------

    @property
    def _topology(self) -> Topology:
        return self.app.topology

    def _routed(self, topic: str, cluster: str | None) -> RoutedTopic:
        found = [t for t in self._topology.topics if t.name == topic]
        if cluster is not None:
            self._topology.cluster(cluster)  # an unknown name is an error that lists the clusters
            found = [t for t in found if t.cluster == cluster]
        if not found:
            routed = sorted({f"{t.cluster}/{t.name}" for t in self._topology.topics})
            where = f" on cluster {cluster!r}" if cluster else ""
            raise ConfigError(
                f"no route consumes {topic!r}{where}; routed topics: {', '.join(routed) or 'none'}"
            )
        clusters = sorted({t.cluster for t in found})
        if len(clusters) > 1:
            raise ConfigError(f"{topic!r} is routed on clusters {clusters}; say which with cluster=")
        return found[0]

    def _cluster_name(self, cluster: str | None) -> str:
        if cluster is None:
            return self._topology.producer_cluster
        return self._topology.cluster(cluster).name

    def _decoder(self, topic: str, cluster: str, payload: Any) -> Any:
        if payload is not None:
            return build_decoder(payload, self.app.producer_format, None, where=f"produced({topic!r})")
        for t in self._topology.topics:
            if t.name == topic and t.cluster == cluster:
                return t.decoder
        return build_decoder(Any, self.app.producer_format, None, where=f"produced({topic!r})")


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue, with where it came from and why (from its headers)."""

    message: Message[bytes]

    def _header(self, name: str) -> str:
        value = self.message.headers.get(name)
        return value.decode() if value is not None else ""

    @property
    def source_topic(self) -> str:
        return self._header("source_topic")

    @property
    def source_partition(self) -> int:
        return int(self._header("source_partition"))

    @property
    def source_offset(self) -> int:
        return int(self._header("source_offset"))

    @property
    def source_cluster(self) -> str:
        return self._header("source_cluster")

    @property
    def error_type(self) -> str:
        return self._header("error_type")

    @property
    def error_message(self) -> str:
        return self._header("error_message")

    @property
    def attempts(self) -> int:
        return int(self._header("attempts"))

    @property
    def value(self) -> bytes | None:
        return self.message.value

    @property
    def key(self) -> bytes | None:
        return self.message.key


class RecordedEvents(Sequence[MonitorEvent]):
    """Every monitor event of the test, in order; ``named("dlq.dispatched", topic="orders")`` filters."""

    def __init__(self) -> None:
        self._events: list[MonitorEvent] = []

    def append(self, event: MonitorEvent) -> None:
        self._events.append(event)

    def named(self, name: str, **match: Any) -> list[MonitorEvent]:
        return [
            e
            for e in self._events
            if e.name == name and all(e.get(field) == value for field, value in match.items())
        ]

    def __getitem__(self, index: Any) -> Any:
        return self._events[index]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[MonitorEvent]:
        return iter(self._events)
