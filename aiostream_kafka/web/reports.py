"""What running apps report to the Web UI, as it travels on the reports and errors topics.

Plain msgspec Structs encoded as JSON: a process report every few seconds (the whole state,
so the UI needs only the latest one per process) and an error report per failure. They
carry cluster names and servers, never settings, so no secret can travel in them.
"""

from __future__ import annotations

import msgspec

SCHEMA = 1


class PartitionStatus(msgspec.Struct, frozen=True):
    topic: str
    partition: int
    committed: int | None = None  # the next offset to read, as last committed by this process
    lag: int | None = None
    paused: bool = False


class HeldBack(msgspec.Struct):
    """What one topic's route held back from its handler in one process (runtime/flow.py):
    messages skipped, and how often its partitions were held."""

    expired: int = 0
    filtered: int = 0
    throttled: int = 0  # pauses: the throttle's budget was spent
    delayed: int = 0  # pauses: a message was not due yet
    paused: int = 0  # pauses: the filter returned a Pause


class ListenerStatus(msgspec.Struct, frozen=True):
    """One subscription group's consumer in one process."""

    id: str  # cluster/group/subscription group
    cluster: str
    group: str
    subscription_group: str
    topics: list[str]
    state: str  # starting, running, crashed, stopped
    messages: int = 0
    batches: int = 0
    errors: int = 0
    dead_lettered: int = 0
    messages_per_second: float = 0.0
    last_commit: float | None = None
    partitions: list[PartitionStatus] = []
    exactly_once: list[str] = []  # its exactly-once topics (each batch one transaction)
    transactions_aborted: int = 0
    held_back: dict[str, HeldBack] = {}  # per topic whose route has flow options


class ClusterStatus(msgspec.Struct, frozen=True):
    name: str
    servers: str = msgspec.field(name="bootstrap_servers")  # Cluster.servers; the wire keeps Kafka's name
    security_protocol: str
    primary: bool = False


class ScheduleStatus(msgspec.Struct, frozen=True):
    """A recurring job as one process sees it: only the scheduler knows its last tick."""

    cluster: str
    job: str
    schedule: str  # cron, UTC
    next_tick: float
    scheduler: bool = False  # this process holds the schedule topic's partition 0
    last_tick: float | None = None
    missed: int = 0  # how many ticks the last one stood for besides itself


class ProcessReport(msgspec.Struct, frozen=True):
    schema: int
    id: str  # host:pid:start, unique per app start
    app: str
    host: str
    pid: int
    started_at: float
    reported_at: float
    interval: float
    state: str  # running, stopping, stopped
    clusters: list[ClusterStatus]
    listeners: list[ListenerStatus]
    schedules: list[ScheduleStatus] = []


class ErrorReport(msgspec.Struct, frozen=True):
    schema: int
    process: str
    app: str
    at: float
    event: str  # batch.failed, fetch.failed, listener.crashed, error.occurred
    cluster: str
    error_type: str
    message: str
    traceback: str = ""
    group: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    kind: str | None = None  # error.occurred's type: commit, dlq.dispatch, ...
    remedy: str | None = None  # fetch.failed's: what to change so that the partition can be read


encode = msgspec.json.Encoder().encode
decode_process = msgspec.json.Decoder(ProcessReport).decode
decode_error = msgspec.json.Decoder(ErrorReport).decode
