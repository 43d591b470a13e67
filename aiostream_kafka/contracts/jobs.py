"""The contract of a job: ``@app.job(...)`` on an ``async def`` whose call ``enqueue`` can check."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import TYPE_CHECKING

from aiostream_kafka.contracts.checks import callable_name, is_async_function
from aiostream_kafka.contracts.cluster import check_known_cluster
from aiostream_kafka.errors import ConfigError

if TYPE_CHECKING:
    from aiostream_kafka.jobs.schedule import Schedule

#: ``enqueue``'s own keywords, which a job's parameters may not shadow.
RESERVED = ("delay", "at")


def check_declaration(
    name: str, *, cluster: object, clusters: Collection[str] | None, declared: Collection[str]
) -> None:
    """A job's name is its own and its cluster one of the app's."""
    if name in declared:
        raise ConfigError(f"job {name!r} is declared twice; give one of them name=...")
    check_known_cluster(cluster, clusters, f"job {name!r}")


def check_function(function: object, name: str) -> inspect.Signature:
    """An ``async def`` none of whose parameters ``enqueue`` takes for itself; its signature."""
    if not is_async_function(function):
        raise ConfigError(f"job {name!r}: {callable_name(function)} must be an async def function")
    signature = inspect.signature(function)
    clash = [p for p in RESERVED if p in signature.parameters]
    if clash:
        raise ConfigError(f"job {name!r}: a parameter may not be called {clash[0]!r} (enqueue uses it)")
    return signature


def check_schedule(name: str, schedule: object, signature: inspect.Signature) -> Schedule:
    """A cron expression (its fault named by field), for a job that can run without arguments."""
    # Imported here: the jobs package imports this module.
    from aiostream_kafka.jobs.cron import CronError
    from aiostream_kafka.jobs.schedule import Schedule

    if not isinstance(schedule, str):
        raise ConfigError(
            f"job {name!r}: schedule= is a cron expression such as '*/5 * * * *', "
            f"not {type(schedule).__name__}"
        )
    try:
        parsed = Schedule(schedule)
    except CronError as error:
        raise ConfigError(f"job {name!r}: schedule {schedule!r}: {error}") from None
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        raise ConfigError(
            f"job {name!r}: a scheduled job is enqueued without arguments, so its parameters need "
            f"defaults; {', '.join(map(repr, required))} has none"
        )
    return parsed
