"""A job: an ``async def`` function that runs in a worker, enqueued with checked arguments."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from aiostream_kafka.contracts.jobs import check_function, check_schedule
from aiostream_kafka.jobs.envelope import JobEnvelope
from aiostream_kafka.producing.producer import ProducerRecord

if TYPE_CHECKING:
    from aiostream_kafka.jobs.registry import Jobs
    from aiostream_kafka.jobs.schedule import Schedule

_running: ContextVar[JobEnvelope | None] = ContextVar("aiostream_kafka_job", default=None)


def current_job() -> JobEnvelope | None:
    """Inside a job a worker runs: its envelope (for a recurring job, the ``tick`` it runs for
    and how many ticks it stands for, ``missed``); None elsewhere, as in a direct call."""
    return _running.get()


class Job:
    """``await send_email.enqueue(to=..., subject=...)`` queues a run (``enqueue_many`` many at
    once); ``await send_email(...)`` runs it here and now (handy in tests). With a ``schedule``
    (cron, UTC), the app's scheduler also enqueues it once per tick."""

    def __init__(
        self,
        function: Callable[..., Awaitable[None]],
        *,
        name: str,
        topic: str,
        cluster: str | None,
        jobs: Jobs,
        schedule: str | None = None,
    ) -> None:
        self.signature = check_function(function, name)
        self.schedule: Schedule | None = (
            None if schedule is None else check_schedule(name, schedule, self.signature)
        )
        self.function = function
        self.name = name
        self.topic = topic
        self.declared_cluster = cluster
        self._jobs = jobs
        hints = typing.get_type_hints(function)
        self._types = {p: hints.get(p, Any) for p in self.signature.parameters}

    @property
    def cluster(self) -> str:
        """Where it is enqueued: its own cluster, else the jobs' cluster (the primary by default)."""
        return self.declared_cluster or self._jobs.cluster

    def arguments(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The call's arguments as plain data, checked against the signature and its types."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"job {self.name!r}: {error}") from None
        bound.apply_defaults()
        encoded = msgspec.to_builtins(bound.arguments)
        for parameter, value in encoded.items():
            try:
                msgspec.convert(value, self._types[parameter], strict=False)
            except msgspec.ValidationError as error:
                raise TypeError(f"job {self.name!r}: argument {parameter!r}: {error}") from None
        return dict(encoded)

    async def enqueue(
        self, *args: Any, delay: timedelta | None = None, at: datetime | None = None, **kwargs: Any
    ) -> str:
        """Produce the job to its topic and cluster; returns its id. ``delay`` or ``at``: not before then."""
        envelope = self._envelope(args, kwargs, delay, at)
        producer = self._jobs.app.producers[self.cluster]
        await producer.produce(
            self.topic, msgspec.json.encode(envelope), key=envelope.id, headers={"job": self.name}
        )
        return envelope.id

    async def enqueue_many(
        self,
        calls: Iterable[Mapping[str, Any]],
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
    ) -> list[str]:
        """Enqueue one run per mapping of keyword arguments, through one ``produce_many`` (the
        batches it builds), and return their ids in order. Every call's arguments are checked
        before any is produced: a wrong one enqueues nothing."""
        envelopes = [self._envelope((), dict(call), delay, at) for call in calls]
        headers = {"job": self.name}
        producer = self._jobs.app.producers[self.cluster]
        await producer.produce_many(
            ProducerRecord(self.topic, msgspec.json.encode(e), key=e.id, headers=headers) for e in envelopes
        )
        return [e.id for e in envelopes]

    def _envelope(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        delay: timedelta | None,
        at: datetime | None,
    ) -> JobEnvelope:
        if delay is not None and at is not None:
            raise TypeError(f"job {self.name!r}: give delay= or at=, not both")
        now = self._jobs.app.clock.now()
        run_at = (
            now + delay.total_seconds() if delay is not None else at.timestamp() if at is not None else None
        )
        return JobEnvelope(self.name, uuid.uuid4().hex, self.arguments(*args, **kwargs), now, run_at)

    async def run(self, envelope: JobEnvelope) -> None:
        """Run an enqueued job: its arguments converted back to the parameters' types."""
        arguments = {p: msgspec.convert(v, self._types[p], strict=False) for p, v in envelope.args.items()}
        token = _running.set(envelope)
        try:
            await self.function(**arguments)
        finally:
            _running.reset(token)

    async def __call__(self, *args: Any, **kwargs: Any) -> None:
        await self.function(*args, **kwargs)

    def __repr__(self) -> str:
        every = f" every {self.schedule.expression!r}" if self.schedule is not None else ""
        return f"<Job {self.name} -> {self.cluster}/{self.topic}{every}>"
