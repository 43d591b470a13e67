"""How current each declared replica is, for ``app.check()``: the replication lag (the age of
the newest heartbeat replicated from the source) and whether failover would accept the
checkpoints now (a dry run of it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.replication.failover import FailoverError, declared_topology, fail_over
from aiostream_kafka.replication.state import newest_heartbeat

if TYPE_CHECKING:
    from aiostream_kafka.app import App


@dataclass(frozen=True)
class ReplicationStatus:
    replica: str
    source: str
    lag: float | None  # seconds since the newest heartbeat replicated from the source; None: none yet
    failed_over: bool
    problems: list[str] = field(default_factory=list)  # why failover would be refused now

    def line(self) -> str:
        where = f"replica {self.replica!r} of {self.source!r}"
        if self.failed_over:
            return f"{where}: failed over (the app runs on {self.replica!r})"
        lag = "no heartbeat replicated yet" if self.lag is None else f"replication lag {self.lag:.1f}s"
        fresh = (
            "checkpoints fresh" if not self.problems else "checkpoints NOT fresh: " + "; ".join(self.problems)
        )
        return f"{where}: {lag}, {fresh}"


async def replication_status(app: App, *, within: float = 10.0) -> list[ReplicationStatus]:
    """One status per declared replica; nothing connects to a failed-over source."""
    failed = {replica.source for replica in app.replicas.failed_over}
    statuses = []
    routed = declared_topology(app)
    for replica in app.replicas:
        if replica.source in failed:
            statuses.append(ReplicationStatus(replica.cluster, replica.source, None, True))
            continue
        async with AdminRegistry(
            routed, client_id=f"{app.name}-check", timeout=within, clients=app.clients
        ) as admins:
            report_problems: list[str] = []
            try:
                report = await fail_over(app, replica.source, within=within, dry_run=True)
                lag = report.heartbeat_age
            except FailoverError as error:
                report_problems = error.problems
                beat = await newest_heartbeat(admins.cluster(replica.cluster), replica.heartbeats_topic)
                lag = None if beat is None else max(0.0, time.time() - beat.timestamp_ms / 1000)
            statuses.append(ReplicationStatus(replica.cluster, replica.source, lag, False, report_problems))
    return statuses
