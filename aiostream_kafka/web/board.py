"""The Web UI's picture of the running apps, built from the reports topic.

It reads the reports and errors topics on the reporting cluster without a consumer group
(every UI sees everything, and none moves anyone's offsets), keeps the latest report of
each process, lets processes that stopped reporting age out, samples throughput and lag
per cluster for the plots, and checks every cluster's health through ``app.admin``. Its
reader comes from ``app.clients``, as every Kafka client does.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from aiokafka import TopicPartition

from aiostream_kafka.runtime.clients import ReaderClient
from aiostream_kafka.web.reports import (
    ErrorReport,
    ProcessReport,
    ScheduleStatus,
    decode_error,
    decode_process,
)

if TYPE_CHECKING:
    from aiostream_kafka.app import App

ERRORS_KEPT = 500


@dataclass(frozen=True)
class Sample:
    at: float
    rate: float  # messages per second, all live processes
    lag: int  # messages behind, all live processes' partitions


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str  # brokers and controller, or why it does not answer
    checked_at: float


class StatusBoard:
    def __init__(
        self,
        app: App,
        *,
        window: float = 300.0,
        history: int = 150,
        sample_every: float = 2.0,
        health_every: float = 10.0,
    ) -> None:
        self._app = app
        self._window = window
        self._sample_every = sample_every
        self._health_every = health_every
        self.processes: dict[str, ProcessReport] = {}
        self.errors: deque[ErrorReport] = deque(maxlen=ERRORS_KEPT)
        self.history: dict[str, deque[Sample]] = {
            name: deque(maxlen=history) for name in app.topology.clusters
        }
        self.health: dict[str, Health] = {}
        self.reading: str = "starting"  # what the reports reader is doing, for the overview

    # --- what the pages show -------------------------------------------------------------------

    def live(self, now: float | None = None) -> list[ProcessReport]:
        """Processes that reported recently, oldest first; the others have aged out."""
        now = time.time() if now is None else now
        for key, report in list(self.processes.items()):
            if report.state == "stopped" or now - report.reported_at > max(3 * report.interval, 15.0):
                del self.processes[key]
        return sorted(self.processes.values(), key=lambda r: r.started_at)

    def clusters(self, now: float | None = None) -> list[dict[str, Any]]:
        """Each cluster of the app: health, throughput, lag, how many processes consume from it."""
        live = self.live(now)
        rows = []
        topology = self._app.topology
        for name, cluster in topology.clusters.items():
            listeners = [ls for p in live for ls in p.listeners if ls.cluster == name]
            health = self.health.get(name)
            rows.append(
                {
                    "name": name,
                    "servers": cluster.servers,
                    "security_protocol": cluster.settings.identity["security_protocol"],
                    "primary": name == topology.primary.name,
                    "reporting": name == self._app.web.cluster,
                    "healthy": None if health is None else health.ok,
                    "health": "checking" if health is None else health.detail,
                    "rate": round(sum(ls.messages_per_second for ls in listeners), 2),
                    "lag": sum(p.lag or 0 for ls in listeners for p in ls.partitions),
                    "processes": len({p.id for p in live for ls in p.listeners if ls.cluster == name}),
                    "listeners": len(listeners),
                    "history": [[s.at, s.rate, s.lag] for s in self.history.get(name, ())],
                }
            )
        return rows

    def schedules(self, now: float | None = None) -> list[dict[str, Any]]:
        """Each recurring job, as its scheduler reports it (the one process that knows its last
        tick); as any live process sees it while none is the scheduler."""
        seen: dict[tuple[str, str], tuple[ProcessReport, ScheduleStatus]] = {}
        for process in self.live(now):
            for status in process.schedules:
                key = (status.cluster, status.job)
                if key not in seen or (status.scheduler and not seen[key][1].scheduler):
                    seen[key] = (process, status)
        return [
            {
                "cluster": status.cluster,
                "job": status.job,
                "schedule": status.schedule,
                "next_tick": status.next_tick,
                "last_tick": status.last_tick,
                "missed": status.missed,
                "scheduler": process.id if status.scheduler else None,
            }
            for (_, _), (process, status) in sorted(seen.items())
        ]

    # --- keeping it current --------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._read)
            tasks.start_soon(self._sample)
            tasks.start_soon(self._check_health)

    async def _sample(self) -> None:
        while True:
            now = time.time()
            for row in self.clusters(now):
                self.history[row["name"]].append(Sample(now, row["rate"], row["lag"]))
            await anyio.sleep(self._sample_every)

    async def _check_health(self) -> None:
        while True:
            async with anyio.create_task_group() as checks:
                for name in self._app.topology.clusters:
                    checks.start_soon(self._check_cluster, name)
            await anyio.sleep(self._health_every)

    async def _check_cluster(self, name: str) -> None:
        try:
            with anyio.fail_after(5):
                info = await self._app.admin.cluster(name).cluster_info()
        except Exception as error:  # its message names the cluster and why, never a secret
            self.health[name] = Health(False, str(error) or type(error).__name__, time.time())
        else:
            brokers = len(info.brokers)
            detail = f"{brokers} broker{'s' if brokers != 1 else ''}, controller {info.controller_id}"
            self.health[name] = Health(True, detail, time.time())

    async def _read(self) -> None:
        """Read the reports and errors topics from a little while ago on, for ever (reconnecting)."""
        web = self._app.web
        while True:
            try:
                await self._read_once(web.cluster, web.reports_topic, web.errors_topic)
                continue
            except Exception as error:
                self.reading = f"cannot read reports from cluster {web.cluster!r}: {error}"
            await anyio.sleep(2)

    async def _read_once(self, cluster: str, reports: str, errors: str) -> None:
        """Read what exists of the two topics; start over once the errors topic appears (it is
        created by the first error a process reports)."""
        admin = self._app.admin.cluster(cluster)
        while reports not in (existing := set(await admin.list_topics())):
            self.reading = f"waiting for {reports} on cluster {cluster!r} (no app reported yet)"
            await anyio.sleep(2)
        topics = [reports, errors] if errors in existing else [reports]
        described = await admin.describe_topics(topics)
        consumer = self._app.clients.reader(
            self._app.topology.cluster(cluster),
            client_id=f"{self._app.name}-web-ui",
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(t, p) for t in topics for p in range(described[t].partitions)]
            consumer.assign(partitions)
            await self._rewind(consumer, [tp for tp in partitions if tp.topic == reports], partitions)
            self.reading = f"reading {' and '.join(topics)} on cluster {cluster!r}"
            looked = time.monotonic()
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for tp, records in batches.items():
                    for record in records:
                        self._take(tp.topic == reports, record.value)
                if errors not in topics and time.monotonic() - looked > 5:
                    looked = time.monotonic()
                    if errors in await admin.list_topics():
                        return
        finally:
            with anyio.CancelScope(shield=True):
                await consumer.stop()

    async def _rewind(
        self, consumer: ReaderClient, reports: list[TopicPartition], partitions: list[TopicPartition]
    ) -> None:
        """Reports from the last ``window`` seconds; the last ``ERRORS_KEPT`` errors."""
        since = int((time.time() - self._window) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(reports, since))
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            if tp in found:
                hit = found[tp]
                offset = hit.offset if hit is not None else ends[tp]
            else:
                offset = max(starts[tp], ends[tp] - ERRORS_KEPT)
            consumer.seek(tp, offset)

    def _take(self, is_report: bool, value: bytes | None) -> None:
        if value is None:
            return
        try:
            if is_report:
                report = decode_process(value)
                known = self.processes.get(report.id)
                if known is None or known.reported_at <= report.reported_at:
                    self.processes[report.id] = report
            else:
                self.errors.appendleft(decode_error(value))
        except msgspec.DecodeError:
            return  # not ours, or from another version: nothing to show
