"""The status reporter: what this process is doing, published where the Web UI reads it.

It listens to the app's Monitor (the runtime knows nothing about it), keeps a tally per
listener, and every ``interval`` seconds sends the whole picture as one ``ProcessReport``
to the reports topic; each failure goes to the errors topic as it happens. Its producer is
its own, on the reporting cluster, with cheap settings (acks=1, some linger): a lost report
is replaced by the next one. Its sends are not instrumented, so reporting does not show up
in the app's own traces and metrics.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent
from aiostream_kafka.instrumentation.redaction import mask
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.web.reports import (
    SCHEMA,
    ClusterStatus,
    ErrorReport,
    HeldBack,
    ListenerStatus,
    PartitionStatus,
    ProcessReport,
    ScheduleStatus,
    encode,
)

if TYPE_CHECKING:
    from aiostream_kafka.app import App

#: Low-cost delivery for reports: one broker ack, batched for a moment, no idempotence, and
#: never the cluster's transactional_id (its transactions are the app's).
PRODUCER_SETTINGS = {"acks": 1, "linger_ms": 50, "enable_idempotence": False, "transactional_id": None}
TRACEBACK_LIMIT = 16_384
REPORT_FAILED = "web.report"
PENDING_ERRORS = 1_000
#: The events that put an entry in the Web UI's errors (when they carry an error).
ERROR_EVENTS = frozenset({"batch.failed", "fetch.failed", "listener.crashed", "error.occurred"})
#: What a route's flow options report (runtime/flow.py), and the count each adds to.
HELD_BACK_EVENTS = {
    "messages.expired": "expired",
    "messages.filtered": "filtered",
    "partition.throttled": "throttled",
    "partition.delayed": "delayed",
    "partition.paused": "paused",
}


@dataclass
class _Tally:
    """One listener as the events describe it."""

    cluster: str
    group: str
    subscription_group: str
    topics: list[str]
    state: str = "starting"
    messages: int = 0
    batches: int = 0
    errors: int = 0
    dead_lettered: int = 0
    rate: float = 0.0
    last_commit: float | None = None
    assigned: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    lag: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    exactly_once: list[str] = field(default_factory=list)
    aborted: int = 0
    held_back: dict[str, Counter[str]] = field(default_factory=dict)  # per topic, by HeldBack's fields


class Reporter:
    def __init__(
        self, app: App, *, cluster: str, reports_topic: str, errors_topic: str, interval: float
    ) -> None:
        self._app = app
        self.cluster = cluster
        self.reports_topic = reports_topic
        self.errors_topic = errors_topic
        self.interval = interval
        self.started_at = time.time()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._secrets = [s for c in app.topology.clusters.values() for s in c.settings.secrets()]
        self._tallies = {
            group.id: _Tally(
                group.cluster,
                group.group_id,
                group.name,
                list(group.topic_names),
                exactly_once=[topic.name for topic in group.exactly_once],
            )
            for group in app.topology.subscription_groups
        }
        self._errors: list[ErrorReport] = []
        self.dropped_errors = 0
        self.producer = Producer(
            app.topology.cluster(cluster),
            Monitor(),  # silent: reports are not the app's traffic
            client_id=f"{app.name}-web-reporter",
            clients=app.clients,
            overrides=PRODUCER_SETTINGS,
        )
        self._unsubscribe: Callable[[], None] = lambda: None
        self._wake = anyio.Event()

    # --- listening ---------------------------------------------------------------------------

    def install(self, monitor: Monitor) -> None:
        self._unsubscribe = monitor.subscribe("*", self.on_event)

    def on_event(self, event: MonitorEvent) -> None:
        tally = self._tally(event)
        name = event.name
        if tally is not None:
            if name == "listener.started":
                tally.state = "running"
            elif name == "listener.crashed":
                tally.state = "crashed"
                tally.errors += 1
            elif name == "listener.restarted":
                tally.state = "starting"
            elif name == "listener.stopped" and tally.state != "crashed":
                tally.state = "stopped"
            elif name == "partitions.assigned":
                tally.assigned |= set(event["partitions"])
            elif name == "partitions.revoked":
                tally.assigned -= set(event["partitions"])
                for partition in event["partitions"]:
                    tally.lag.pop(partition, None)
            elif name == "batch.processed":
                tally.batches += 1
                tally.messages += event["count"]
            elif name in ("batch.failed", "fetch.failed"):
                tally.errors += 1
            elif name == "dlq.dispatched":
                tally.dead_lettered += 1
            elif name == "transaction.aborted":
                tally.aborted += 1
            elif name == "offsets.committed":
                tally.committed.update(event["offsets"])
                tally.last_commit = event.time
            elif name in HELD_BACK_EVENTS:
                held = tally.held_back.setdefault(event["topic"], Counter())
                held[HELD_BACK_EVENTS[name]] += event.get("count", 1)  # messages skipped, or one pause
            elif name == "statistics.emitted":
                tally.rate = event["messages_per_second"]
                tally.lag = dict(event["lag"])
                tally.assigned = set(event["assigned"])
                tally.paused = set(event["paused"])
        failed = name in ERROR_EVENTS and event.get("error") is not None
        if failed and event.get("type") != REPORT_FAILED:  # reporting that reporting failed never ends
            self._error(event)

    def _tally(self, event: MonitorEvent) -> _Tally | None:
        group, subscription_group = event.get("group"), event.get("subscription_group")
        if group is None or subscription_group is None:
            return None
        return self._tallies.get(f"{event['cluster']}/{group}/{subscription_group}")

    def _error(self, event: MonitorEvent) -> None:
        if len(self._errors) >= PENDING_ERRORS:
            self.dropped_errors += 1
            return
        error: BaseException = event["error"]
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self._errors.append(
            ErrorReport(
                schema=SCHEMA,
                process=self.id,
                app=self._app.name,
                at=event.time,
                event=event.name,
                cluster=event["cluster"],
                error_type=f"{type(error).__module__}.{type(error).__qualname__}",
                message=mask(str(error), self._secrets),
                traceback=mask(text[-TRACEBACK_LIMIT:], self._secrets),
                group=event.get("group"),
                topic=event.get("topic"),
                partition=event.get("partition"),
                offset=event.get("offset"),
                kind=event.get("type"),
                remedy=event.get("remedy"),
            )
        )
        self._wake.set()

    # --- publishing --------------------------------------------------------------------------

    def snapshot(self, state: str = "running") -> ProcessReport:
        topology = self._app.topology
        return ProcessReport(
            schema=SCHEMA,
            id=self.id,
            app=self._app.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            reported_at=time.time(),
            interval=self.interval,
            state=state,
            clusters=[
                ClusterStatus(
                    name,
                    cluster.servers,
                    cluster.settings.identity["security_protocol"],
                    primary=name == topology.primary.name,
                )
                for name, cluster in topology.clusters.items()
            ],
            listeners=[_status(listener_id, tally) for listener_id, tally in self._tallies.items()],
            schedules=_schedules(self._app),
        )

    async def run(self) -> None:
        """Report now and every ``interval`` seconds, errors as soon as they come, until cancelled."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._send_errors)
            while True:
                await self._send_report(self.snapshot())
                await self._app.clock.tick(self.interval)

    async def _send_errors(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            errors, self._errors = self._errors, []
            for report in errors:
                await self._send(self.errors_topic, report.process, encode(report))

    async def _send_report(self, report: ProcessReport) -> None:
        await self._send(self.reports_topic, report.id, encode(report))

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        try:
            delivery = await self.producer.produce_nowait(topic, value, key=key)
        except Exception as error:  # the reporting cluster is away: the next report will do
            self._app.monitor.emit("error.occurred", cluster=self.cluster, type=REPORT_FAILED, error=error)
        else:
            delivery.add_done_callback(_settled)

    async def stop(self) -> None:
        """A last report saying this process stopped (so the UI drops it at once), then close."""
        self._unsubscribe()
        with anyio.move_on_after(5):
            for report in self._errors:
                await self._send(self.errors_topic, report.process, encode(report))
            await self._send_report(self.snapshot("stopped"))
        await self.producer.stop()


def _schedules(app: App) -> list[ScheduleStatus]:
    """Each recurring job as this process sees it (with its last tick if this is its scheduler)."""
    found = []
    for scheduler in app.jobs.schedulers:
        for job in scheduler.jobs.values():
            assert job.schedule is not None
            record = scheduler.records.get(job.name) if scheduler.owner else None
            found.append(
                ScheduleStatus(
                    scheduler.cluster.name,
                    job.name,
                    job.schedule.expression,
                    scheduler.next_tick(job),
                    scheduler=scheduler.owner,
                    last_tick=record.last_tick if record is not None else None,
                    missed=record.missed if record is not None else 0,
                )
            )
    return found


def _status(listener_id: str, tally: _Tally) -> ListenerStatus:
    partitions = sorted(tally.assigned)
    return ListenerStatus(
        id=listener_id,
        cluster=tally.cluster,
        group=tally.group,
        subscription_group=tally.subscription_group,
        topics=tally.topics,
        state=tally.state,
        messages=tally.messages,
        batches=tally.batches,
        errors=tally.errors,
        dead_lettered=tally.dead_lettered,
        messages_per_second=tally.rate,
        last_commit=tally.last_commit,
        partitions=[_partition(name, tally) for name in partitions],
        exactly_once=tally.exactly_once,
        transactions_aborted=tally.aborted,
        held_back={topic: HeldBack(**held) for topic, held in tally.held_back.items()},
    )


def _partition(name: str, tally: _Tally) -> PartitionStatus:
    topic, _, partition = name.rpartition("/")
    return PartitionStatus(
        topic=topic,
        partition=int(partition),
        committed=tally.committed.get(name),
        lag=tally.lag.get(name),
        paused=name in tally.paused,
    )


def _settled(delivery: asyncio.Future[Any]) -> None:
    """A report that could not be delivered is replaced by the next one; say nothing."""
    if not delivery.cancelled():
        delivery.exception()
