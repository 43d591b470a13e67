"""The scheduler of one cluster's recurring jobs: whoever holds partition 0 of the schedule topic.

Every process of the app runs one per cluster with scheduled jobs, as a member of the
consumer group ``<group_id>.schedule`` subscribed to the single-partition schedule topic:
Kafka's assignment makes exactly one of them the scheduler; the others only keep their
membership, ready to take over. No lock of our own.

The scheduler that takes over first starts a transactional producer whose id is the same in
every process (``<group_id>.schedule.<topic>``), which fences the previous scheduler (a process
killed with kill -9, or one that lost the partition and does not know it yet: its open
transaction is aborted, and it can commit nothing more), then reads the schedule topic,
read-committed, to the end: the last tick enqueued per job. From then on, each tick is one
transaction: the job's envelope to its jobs topic and the tick's record to the schedule
topic, so a tick is enqueued once however the scheduler changes hands. Running it is as
reliable as any job (at least once: the envelope's id is the same for one tick).

Missed ticks (no scheduler was running): on return, the latest of them is enqueued once,
saying how many earlier ones it stands for (``JobEnvelope.missed``), not one run per tick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from aiostream_kafka.config import Cluster
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.jobs.envelope import JobEnvelope
from aiostream_kafka.jobs.schedule import ScheduleRecord, tick_id
from aiostream_kafka.processing.policy import is_fatal
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.clients import ConsumerClient, KafkaClients
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.reachability import client_of
from aiostream_kafka.runtime.transactions import TRANSACTIONAL_DEFAULTS, TRANSACTIONAL_SETTINGS

if TYPE_CHECKING:
    from aiostream_kafka.admin.client import Admin
    from aiostream_kafka.jobs.job import Job

#: How long one poll of the (paused) schedule partition waits: polling is what lets a
#: rebalance reach the scheduler, so it is done all the time.
POLL_MS = 1000
_decode = msgspec.json.Decoder(ScheduleRecord).decode


class Scheduler(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        cluster: Cluster,
        topic: str,
        group_id: str,
        client_id: str,
        clients: KafkaClients,
        admin: Admin,
        clock: Clock,
        monitor: Monitor,
        restart_backoff: Backoff,
    ) -> None:
        self.jobs = {job.name: job for job in jobs}
        self._admin = admin
        self.cluster = cluster
        self.topic = topic
        self.group_id = group_id
        self.transactional_id = f"{group_id}.{topic}"
        self._client_id = client_id
        self._clients = clients
        self._clock = clock
        self._monitor = monitor
        self._backoff = restart_backoff
        self._tp = TopicPartition(topic, 0)
        self._tags = {"cluster": cluster.name, "topic": topic, "group": group_id}
        #: The last record of each job, as the schedule topic has it (while this is the scheduler).
        self.records: dict[str, ScheduleRecord] = {}
        self._consumer: ConsumerClient | None = None
        self._producer: Producer | None = None
        self._joined = False  # the consumer has started (joined the group)
        self._assigned = False  # partition 0 is this member's
        self.owner = False  # ... and this one has fenced the previous scheduler and read the state
        self._lock = anyio.Lock()  # taking over, a tick and letting go, one at a time
        self._waiting: anyio.CancelScope | None = None
        self._woken = False
        self.failure: Exception | None = None  # the last run's, until a run succeeds
        self._failures = 0  # in a row: the restart backoff's attempt

    # --- what the Web UI, info and the harness read ----------------------------------------

    def next_tick(self, job: Job) -> float:
        """When ``job`` is due next (as far as this process knows)."""
        assert job.schedule is not None
        record = self.records.get(job.name)
        return job.schedule.next_tick(record.after if record is not None else self._clock.now())

    @property
    def settled(self) -> bool:
        """Nothing left to do now: not taking over, and no tick due (the harness's idle)."""
        if self.failure is not None or (self._joined and not self._assigned):
            return True
        return self.owner and not self._lock.locked() and self._due(self._clock.now()) is None

    # --- the run: membership, taking over, ticks -----------------------------------------

    async def run(self) -> None:
        """Until cancelled; a failure (a cluster away, a fenced producer) is reported, then the
        whole run begins again after the app's restart backoff."""
        while True:
            try:
                await self._serve()
            except Exception as error:
                if is_fatal(error):
                    raise
                self._failures += 1
                self.failure = error
                delay = self._backoff.delay(self._failures)
                self._monitor.emit(
                    "error.occurred", **self._tags, type="schedule", error=error, restart_in=delay
                )
                await self._clock.sleep(delay)

    async def _serve(self) -> None:
        await self._check_topic()
        settings = {**self.cluster.settings.client, **self.cluster.settings.consumer}
        for owned in ("group_id", "auto_offset_reset", "enable_auto_commit", "isolation_level"):
            settings.pop(owned, None)
        consumer = self._clients.consumer(
            self.cluster,
            **{"client_id": self._client_id, **settings},
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            isolation_level="read_committed",
        )
        self._consumer = consumer
        consumer.subscribe([self.topic], listener=self)
        try:
            with client_of(self.cluster.name):
                await consumer.start()
            self._joined = True
            self.failure = None  # this run has begun
            async with anyio.create_task_group() as running:
                running.start_soon(self._poll, consumer)
                await self._tick_loop()
        finally:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._let_go()
                self._assigned = self._joined = False
                self._consumer = None
                await consumer.stop()

    async def _check_topic(self) -> None:
        """A group subscribed to a missing topic is simply never assigned it: say so instead."""
        if self.topic not in await self._admin.describe_topics([self.topic]):
            raise ConfigError(
                f"the schedule topic {self.topic!r} of jobs {sorted(self.jobs)} does not exist on cluster "
                f"{self.cluster.name!r}: create it with `aiostream-kafka topics migrate APP` (it is "
                f"declared: 1 partition, compacted), or App(auto_create_topics=True) and app.check()"
            )

    async def _poll(self, consumer: ConsumerClient) -> None:
        while True:  # the partition is paused: this only lets rebalances through
            await consumer.getmany(timeout_ms=POLL_MS, max_records=None)

    async def _tick_loop(self) -> None:
        while True:
            self._woken = False
            async with self._lock:
                if self._assigned and not self.owner:
                    await self._take_over()
                if self.owner:
                    while (due := self._due(self._clock.now())) is not None:
                        await self._enqueue(*due)
                wait = self._next() if self.owner else None
            if self._woken:
                continue
            with anyio.CancelScope() as self._waiting:
                if wait is None:
                    await anyio.sleep_forever()
                else:
                    await self._clock.tick_until(wait)
            self._waiting = None

    def _wake(self) -> None:
        self._woken = True
        if self._waiting is not None:
            self._waiting.cancel()

    def _due(self, now: float) -> tuple[Job, float, int] | None:
        for name, job in self.jobs.items():
            assert job.schedule is not None
            record = self.records.get(name)
            if record is None:
                continue
            due = job.schedule.due(record, now)
            if due is not None:
                return job, *due
        return None

    def _next(self) -> float:
        return min(self.next_tick(job) for job in self.jobs.values())

    # --- rebalances (aiokafka calls these from its coordinator) ----------------------------

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self._tp in assigned and self._consumer is not None:
            self._consumer.pause(self._tp)  # nothing to fetch: the state is read on taking over
            self._assigned = True
            self._wake()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._tp in revoked:
            self._assigned = False
            self._wake()
            async with self._lock:  # a tick in progress commits (or fails) first
                await self._let_go()

    # --- taking over and letting go ------------------------------------------------------

    async def _take_over(self) -> None:
        """Fence the previous scheduler, read what it enqueued, and record jobs new to the topic."""
        producer = self._producer = Producer(
            self.cluster,
            self._monitor,
            client_id=self._client_id,
            clients=self._clients,
            clock=self._clock,
            overrides={
                **TRANSACTIONAL_DEFAULTS,
                **self.cluster.settings.producer_kwargs(),
                **TRANSACTIONAL_SETTINGS,
                "transactional_id": self.transactional_id,
            },
        )
        await producer.start()  # fences the previous scheduler; its open transaction aborts
        records = await self._read_records()
        now = self._clock.now()
        new = {
            name: ScheduleRecord(name, job.schedule.expression, since=now)
            for name, job in self.jobs.items()
            if name not in records and job.schedule is not None
        }
        if new:
            await self._commit([(self.topic, name, msgspec.json.encode(r)) for name, r in new.items()])
        self.records = {**records, **new}
        self.owner = True
        self._failures = 0
        self._monitor.emit(
            "schedule.assigned",
            **self._tags,
            transactional_id=self.transactional_id,
            jobs={name: self.next_tick(job) for name, job in self.jobs.items()},
        )

    async def _read_records(self) -> dict[str, ScheduleRecord]:
        """The schedule topic, read committed, from its start to its end: each job's last record."""
        reader = self._clients.reader(
            self.cluster,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        records: dict[str, ScheduleRecord] = {}
        with client_of(self.cluster.name):
            await reader.start()
        try:
            reader.assign([self._tp])
            end = (await reader.end_offsets([self._tp]))[self._tp]
            reader.seek(self._tp, (await reader.beginning_offsets([self._tp]))[self._tp])
            while await reader.position(self._tp) < end:
                fetched = await reader.getmany(self._tp, timeout_ms=POLL_MS, max_records=None)
                for record in fetched.get(self._tp, []):
                    if record.key is not None and record.value is not None:
                        name = record.key.decode()
                        records[name] = _decode(record.value)
        finally:
            with anyio.CancelScope(shield=True):
                await reader.stop()
        return records

    async def _let_go(self) -> None:
        producer, self._producer = self._producer, None
        was_owner, self.owner = self.owner, False
        self.records = {}  # the next scheduler's now
        if producer is not None:
            await producer.stop()
        if was_owner:
            self._monitor.emit("schedule.revoked", **self._tags, transactional_id=self.transactional_id)

    # --- a tick --------------------------------------------------------------------------

    async def _enqueue(self, job: Job, tick: float, missed: int) -> None:
        """One transaction: the job's envelope for ``tick`` and the tick's record."""
        assert job.schedule is not None
        now = self._clock.now()
        envelope = JobEnvelope(
            job.name, tick_id(job.name, tick), job.arguments(), now, tick=tick, missed=missed
        )
        previous = self.records[job.name]
        record = ScheduleRecord(
            job.name,
            job.schedule.expression,
            since=previous.since,
            last_tick=tick,
            missed=missed,
            envelope_id=envelope.id,
        )
        if job.cluster != self.cluster.name:  # the registry groups jobs by cluster: never
            raise ConfigError(f"job {job.name!r} goes to cluster {job.cluster!r}, not {self.cluster.name!r}")
        began = time.perf_counter()
        await self._commit(
            [
                (job.topic, envelope.id, msgspec.json.encode(envelope), {"job": job.name}),
                (self.topic, job.name, msgspec.json.encode(record)),
            ]
        )
        self.records[job.name] = record
        self._monitor.emit(
            "schedule.tick",
            **self._tags,
            job=job.name,
            tick=tick,
            missed=missed,
            job_topic=job.topic,
            id=envelope.id,
            late=now - tick,
            duration=time.perf_counter() - began,
        )

    async def _commit(self, records: list[tuple[Any, ...]]) -> None:
        """Produce ``(topic, key, value[, headers])`` records in one transaction."""
        producer = self._producer
        assert producer is not None
        await producer.begin_transaction()
        try:
            for topic, key, value, *headers in records:
                partition = 0 if topic == self.topic else None
                await producer.produce(
                    topic, value, key=key, headers=headers[0] if headers else None, partition=partition
                )
            await producer.commit_transaction()
        except BaseException:
            with anyio.CancelScope(shield=True):
                try:
                    await producer.abort_transaction()
                except Exception as abort_error:  # fenced, or the cluster away: the next owner aborts it
                    self._monitor.emit(
                        "error.occurred", **self._tags, type="transaction.abort", error=abort_error
                    )
            raise
