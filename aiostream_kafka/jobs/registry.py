"""``app.jobs``: declaring jobs, and routing job topics to workers that run them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import TYPE_CHECKING

from aiostream_kafka.contracts.jobs import check_declaration
from aiostream_kafka.errors import ConfigError, DecodeError, UnknownClusterError
from aiostream_kafka.jobs.envelope import JobEnvelope, UnknownJobError
from aiostream_kafka.jobs.job import Job
from aiostream_kafka.messages import Messages

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

    @property
    def cluster(self) -> str:
        """The cluster jobs go to unless they name one: the primary, unless ``App(jobs_cluster=...)``."""
        return self._cluster or self.app.topology.primary.name

    def job(
        self, *, topic: str = "jobs.default", cluster: str | None = None, name: str | None = None
    ) -> Callable[[JobFunction], Job]:
        """Declare an ``async def`` function as a job enqueued to ``topic``."""

        def declare(function: JobFunction) -> Job:
            job_name = name or f"{function.__module__}.{function.__qualname__}"
            check_declaration(job_name, cluster=cluster, clusters=self._clusters, declared=self._jobs.keys())
            job = Job(function, name=job_name, topic=topic, cluster=cluster, jobs=self)
            self._jobs[job_name] = job
            return job

        return declare

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

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())
