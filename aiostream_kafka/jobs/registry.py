"""``app.jobs``: declaring jobs, and routing job topics to workers that run them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import TYPE_CHECKING

from aiostream_kafka.contracts.jobs import check_declaration
from aiostream_kafka.errors import ConfigError, DecodeError, UnknownClusterError
from aiostream_kafka.jobs.envelope import JobEnvelope, UnknownJobError
from aiostream_kafka.jobs.job import Job
from aiostream_kafka.jobs.scheduler import Scheduler
from aiostream_kafka.messages import Messages
from aiostream_kafka.topic_names import is_topic_name

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from aiostream_kafka.app import App
    from aiostream_kafka.routing.routes import RouteOptions
    from aiostream_kafka.routing.topology import Topology

JobFunction = Callable[..., Awaitable[None]]


class Jobs:
    """``clusters``: the app's cluster names, so that a job naming another fails where it is declared."""

    def __init__(
        self, app: App, *, cluster: str | None = None, clusters: Collection[str] | None = None
    ) -> None:
        self.app = app
        self._cluster = cluster
        self._clusters = clusters
        self._jobs: dict[str, Job] = {}
        #: While the app runs: one scheduler per cluster with recurring jobs.
        self.schedulers: list[Scheduler] = []
        self._scheduling: list[asyncio.Task[None]] = []

    @property
    def cluster(self) -> str:
        """The cluster jobs go to unless they name one: the primary, unless ``App(jobs_cluster=...)``."""
        return self._cluster or self.app.topology.primary.name

    @property
    def schedule_topic(self) -> str:
        """The single-partition topic whose partition 0 makes a process the scheduler, and which
        keeps each recurring job's last tick (one per cluster with recurring jobs)."""
        return f"{self.app.group_id}.schedule"

    @property
    def schedule_group(self) -> str:
        """The consumer group every process of the app joins to take part in scheduling."""
        return f"{self.app.group_id}.schedule"

    def job(
        self,
        *,
        topic: str = "jobs.default",
        cluster: str | None = None,
        name: str | None = None,
        schedule: str | None = None,
    ) -> Callable[[JobFunction], Job]:
        """Declare an ``async def`` function as a job enqueued to ``topic``; with ``schedule`` (a
        cron expression, in UTC) it is also enqueued once per tick, by one process of the app."""

        def declare(function: JobFunction) -> Job:
            job_name = name or f"{function.__module__}.{function.__qualname__}"
            check_declaration(job_name, cluster=cluster, clusters=self._clusters, declared=self._jobs.keys())
            job = Job(function, name=job_name, topic=topic, cluster=cluster, jobs=self, schedule=schedule)
            if job.schedule is not None:
                self._declare_schedule_topic(job_name, cluster or self._cluster)
            self._jobs[job_name] = job
            return job

        return declare

    def _declare_schedule_topic(self, job: str, cluster: str | None) -> None:
        topic = self.schedule_topic
        if not is_topic_name(topic):
            raise ConfigError(
                f"job {job!r}: its schedule topic {topic!r} (the app's group id + '.schedule') is no "
                f"valid Kafka topic name; give the App a group_id of letters, digits, '.', '_', '-'"
            )
        # the same declaration for every recurring job of a cluster: the topology keeps one
        self.app.topics.declare(topic, cluster=cluster, partitions=1, settings={"cleanup.policy": "compact"})

    def consume(self, topic: str = "jobs.default", **options: Unpack[RouteOptions]) -> None:
        """Run the jobs enqueued to ``topic`` in this app, with the route ``options`` (retry,
        dead_letter_queue, max_messages, ...). ``cluster``: by default the one its jobs go to."""
        if "cluster" not in options:
            # The clusters its jobs name (None: the jobs' default). Not job.cluster: resolving the
            # primary would build the topology, and routes are fixed once it is built.
            named = {
                job.declared_cluster or self._cluster for job in self._jobs.values() if job.topic == topic
            }
            if len(named) > 1:
                shown = sorted(name or "the primary" for name in named)
                raise ConfigError(f"jobs on topic {topic!r} go to {shown}: say which with cluster=")
            cluster = named.pop() if named else self._cluster
            if cluster is not None:
                options["cluster"] = cluster
        options["payload"] = JobEnvelope
        options["manual_offset_management"] = True  # each job is marked as it completes
        self.app.routes.topic(topic, handler=self._execute, **options)

    async def _execute(self, messages: Messages[JobEnvelope]) -> None:
        for message in messages:
            envelope = message.payload
            if envelope is None:  # a tombstone has no payload (none is decoded), so no job
                raise DecodeError(
                    "a tombstone (no value) is not a job",
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                )
            job = self._jobs.get(envelope.name)
            if job is None:
                raise UnknownJobError(
                    f"no job named {envelope.name!r} in this app (it has: {', '.join(self._jobs) or 'none'})",
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                )
            wait = (envelope.run_at or 0) - self.app.clock.now()
            if wait > 0:  # not due: pause this partition until it is, resuming at this job
                messages.pause(duration=wait)
                return
            await job.run(envelope)
            messages.mark_as_consumed(message)

    def check_clusters(self, topology: Topology) -> None:
        """Every job's cluster exists (called while the topology is built)."""
        for job in self._jobs.values():
            cluster = job.declared_cluster or self._cluster or topology.primary.name
            if cluster not in topology.clusters:
                raise UnknownClusterError.named(cluster, topology.clusters, f"job {job.name!r}")

    # --- recurring jobs while the app runs -----------------------------------------------

    def start_schedules(self) -> None:
        """One scheduler per cluster with recurring jobs, each in a task of its own."""
        app = self.app
        by_cluster: dict[str, list[Job]] = {}
        for job in self._jobs.values():
            if job.schedule is not None:
                by_cluster.setdefault(job.cluster, []).append(job)
        self.schedulers = [
            Scheduler(
                jobs,
                cluster=app.topology.clusters[cluster],
                topic=self.schedule_topic,
                group_id=self.schedule_group,
                client_id=app.name,
                clients=app.clients,
                admin=app.admin.cluster(cluster),
                clock=app.clock,
                monitor=app.monitor,
                restart_backoff=app.restart_backoff,
            )
            for cluster, jobs in by_cluster.items()
        ]
        self._scheduling = [
            asyncio.create_task(s.run(), name=f"{app.name} scheduler on {s.cluster.name}")
            for s in self.schedulers
        ]

    async def stop_schedules(self) -> None:
        """Cancel the schedulers: a tick in progress aborts (the next scheduler enqueues it)."""
        tasks, self._scheduling = self._scheduling, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for task in tasks:  # run() reports its failures itself; only a fatal one ends it
            if not task.cancelled() and task.exception() is not None:
                self.app.monitor.emit(
                    "error.occurred", cluster=self.cluster, type="schedule", error=task.exception()
                )

    def scheduled(self) -> list[Job]:
        """The recurring jobs."""
        return [job for job in self._jobs.values() if job.schedule is not None]

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())
