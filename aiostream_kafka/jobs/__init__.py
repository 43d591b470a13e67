"""Background jobs on Kafka: typed ``async def`` functions enqueued through the producers and
executed by worker routes, with the routes' retry and dead-letter policies."""

from aiostream_kafka.jobs.envelope import JobEnvelope, UnknownJobError
from aiostream_kafka.jobs.job import Job, current_job
from aiostream_kafka.jobs.registry import Jobs

__all__ = ["Job", "JobEnvelope", "Jobs", "UnknownJobError", "current_job"]
