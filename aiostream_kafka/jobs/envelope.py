"""What travels on a job topic."""

from __future__ import annotations

from typing import Any

import msgspec

from aiostream_kafka.errors import DecodeError


class JobEnvelope(msgspec.Struct, frozen=True):
    """One enqueued job: which function, with what arguments, due when (epoch seconds).

    A recurring job's run says which ``tick`` it is for (epoch seconds) and how many earlier
    ticks, ``missed`` while no scheduler ran, it stands for."""

    name: str
    id: str
    args: dict[str, Any]
    enqueued_at: float
    run_at: float | None = None
    tick: float | None = None
    missed: int = 0


class UnknownJobError(DecodeError):
    """A job this worker has no function for: it will never run here, so it goes straight
    to the route's dead-letter queue (like a payload that does not decode)."""
