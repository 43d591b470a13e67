"""Failover and failback of an app's consumer groups between a cluster and its MirrorMaker replica.

Failover reads MirrorMaker's checkpoints on the replica (``<source>.checkpoints.internal``),
refuses when a group's are missing or stale, and commits each group's translated offsets
on the replica itself (MirrorMaker's own ``sync.group.offsets`` is not relied on). Where
MirrorMaker writes its offset syncs on the replica (``offset-syncs.topic.location=target``),
each checkpoint's source offset is translated through them too, and the later of the two
(both never skip a record) is committed: the checkpoints' translation coarsens for offsets
far behind the replication. Failback
translates the offsets the groups reached on the replica back through MirrorMaker's offset
syncs on the source and commits them there. Either way the app's consumers must be stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from aiostream_kafka.admin.client import Admin
from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.errors import AiostreamKafkaError, ClusterConnectionError
from aiostream_kafka.replication.records import Checkpoint, Heartbeat, OffsetSync
from aiostream_kafka.replication.state import newest_checkpoints, newest_heartbeat, offset_syncs
from aiostream_kafka.routing.topology import Topology

if TYPE_CHECKING:
    from aiostream_kafka.app import App

#: By default, a checkpoint is stale when MirrorMaker went on replicating this much longer
#: (seconds, by its heartbeats) without checkpointing a group that had not read everything.
MAX_CHECKPOINT_AGE = 30.0


class FailoverError(AiostreamKafkaError):
    """A failover or failback refused: what is missing or stale, group by group."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{what} refused:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Translation:
    """One partition of one group: committed ``offset`` on the target for ``topic`` there."""

    group: str
    topic: str
    partition: int
    offset: int
    source_offset: int  # the offset it translates, on the cluster failed over (or back) from


@dataclass
class FailoverReport:
    """What a failover or failback committed, and how current the replication was."""

    source: str
    target: str
    source_reachable: bool
    translations: list[Translation] = field(default_factory=list)
    heartbeat_age: float | None = None  # seconds since the newest replicated heartbeat (None: none)

    def lines(self) -> list[str]:
        reach = "reachable" if self.source_reachable else "unreachable"
        lag = "" if self.heartbeat_age is None else f"; last heartbeat {self.heartbeat_age:.1f}s ago"
        out = [f"from {self.source!r} ({reach}) to {self.target!r}{lag}"]
        for t in self.translations:
            out.append(f"  group {t.group!r} {t.topic}/{t.partition}: {t.source_offset} -> {t.offset}")
        return out


def declared_topology(app: App) -> Topology:
    """The app's topology as declared, before anything moved to a replica."""
    topology = app.topology  # building it sets app.replicas.routed
    return app.replicas.routed or topology


def _groups_on(topology: Topology, cluster: str) -> dict[str, list[str]]:
    """The consumer groups the app runs on ``cluster``, and the topics each consumes there."""
    groups: dict[str, list[str]] = {}
    for group in topology.subscription_groups:
        if group.cluster == cluster:
            groups.setdefault(group.group_id, []).extend(group.topic_names)
    return groups


async def _committed(admin: Admin, group: str, within: float) -> dict[tuple[str, int], int] | None:
    """The group's committed offsets on ``admin``'s cluster; None when the cluster does not answer."""
    try:
        with anyio.fail_after(within):
            info = await admin.consumer_group(group)
    except (ClusterConnectionError, TimeoutError):
        return None
    return {(p.topic, p.partition): p.committed for p in info.partitions if p.committed is not None}


async def fail_over(
    app: App,
    source: str,
    *,
    to: str | None = None,
    max_checkpoint_age: float = MAX_CHECKPOINT_AGE,
    within: float = 10.0,
    dry_run: bool = False,
) -> FailoverReport:
    """Commit on ``source``'s replica each of the app's groups' offsets translated by MirrorMaker's
    checkpoints; then run the app with ``AIOSTREAM_KAFKA_FAILED_OVER=<source>``.

    Refused (``FailoverError``, naming the groups) when a group's checkpoints are missing (a
    partition it committed on the source has none; with the source away: the group has none at
    all), or stale: behind the group's committed offset on the source when it answers;
    otherwise older than ``max_checkpoint_age`` seconds before the source's newest replicated
    heartbeat, for a partition the group had not read to the end. A partition the group never
    committed is left uncommitted on the replica too: the group starts there at its initial offset.
    """
    replica = app.replicas.replica_of(source)
    if to is not None and to != replica.cluster:
        app.replicas.replica_named(to)  # an error if it is no replica at all
        raise FailoverError(
            "failover", [f"cluster {to!r} holds no replica of {source!r} ({replica.cluster!r} does)"]
        )
    routed = declared_topology(app)
    async with AdminRegistry(
        routed, client_id=f"{app.name}-failover", timeout=within, clients=app.clients
    ) as admins:
        target = admins.cluster(replica.cluster)
        checkpoints = await newest_checkpoints(target, replica.checkpoints_topic)
        heartbeat = await newest_heartbeat(target, replica.heartbeats_topic)
        # on the replica with offset-syncs.topic.location=target; otherwise they went with the source
        syncs = await offset_syncs(target, replica.offset_syncs_on_replica)
        groups = _groups_on(routed, source)
        on_source = {group: await _committed(admins.cluster(source), group, within) for group in groups}
        reachable = all(committed is not None for committed in on_source.values()) if groups else False
        report = FailoverReport(source, replica.cluster, reachable)
        if heartbeat is not None:
            report.heartbeat_age = max(0.0, time.time() - heartbeat.timestamp_ms / 1000)
        problems: list[str] = []
        if heartbeat is None and not reachable:
            problems.append(
                f"cluster {replica.cluster!r} has no heartbeats from {source!r} "
                f"({replica.heartbeats_topic}): "
                f"MirrorMaker never replicated it there, so nothing says how current the checkpoints are"
            )
        for group, topics in groups.items():
            missing: list[str] = []
            stale: list[str] = []
            any_checkpoint = any(key[0] == group for key in checkpoints)
            for topic in topics:
                remote = replica.remote_topic(topic)
                if remote not in await target.list_topics():
                    problems.append(
                        f"group {group!r}: topic {topic!r} is not replicated to cluster {replica.cluster!r} "
                        f"(no topic {remote!r}); is it in MirrorMaker's topics?"
                    )
                    continue
                for partition, (start, end) in (await target.offsets(remote)).items():
                    checkpoint = checkpoints.get((group, remote, partition))
                    committed = (on_source[group] or {}).get((topic, partition))
                    where = f"{remote}/{partition}"
                    if checkpoint is None:
                        # Never committed on the source, as far as can be told, so nothing to translate:
                        # the group starts there as it would have (its initial offset).
                        if committed is not None or (not reachable and end > start and not any_checkpoint):
                            missing.append(where)
                        continue
                    if _stale(
                        checkpoint, committed, reachable, heartbeat_ms(heartbeat), end, max_checkpoint_age
                    ):
                        behind = (
                            f"committed {committed} on {source!r}, checkpoint at {checkpoint.upstream_offset}"
                            if reachable
                            else f"checkpoint from {_age(heartbeat_ms(heartbeat), checkpoint):.0f}s before "
                            f"the last heartbeat"
                        )
                        stale.append(f"{where} ({behind})")
                    synced = _downstream(syncs.get((topic, partition), []), checkpoint.upstream_offset)
                    offset = min(max(checkpoint.downstream_offset, synced, start), end)
                    report.translations.append(
                        Translation(group, remote, partition, offset, checkpoint.upstream_offset)
                    )
            if missing:
                problems.append(
                    f"group {group!r}: no checkpoint for {', '.join(missing)} in {replica.checkpoints_topic} "
                    f"on {replica.cluster!r}; is the group in MirrorMaker's groups, and has it run since?"
                )
            if stale:
                problems.append(f"group {group!r}: stale checkpoints for {', '.join(stale)}")
        if problems:
            raise FailoverError(f"failover of {source!r} to {replica.cluster!r}", problems)
        if not dry_run:
            await _commit(target, report.translations)
    return report


def heartbeat_ms(heartbeat: Heartbeat | None) -> int | None:
    return None if heartbeat is None else heartbeat.timestamp_ms


def _age(heartbeat_ms: int | None, checkpoint: Checkpoint) -> float:
    return 0.0 if heartbeat_ms is None else (heartbeat_ms - checkpoint.timestamp_ms) / 1000


def _stale(
    checkpoint: Checkpoint,
    committed: int | None,
    reachable: bool,
    heartbeat_ms: int | None,
    end: int,
    max_age: float,
) -> bool:
    if reachable:
        return committed is not None and committed > checkpoint.upstream_offset
    if checkpoint.downstream_offset >= end:  # read to the end of what was replicated: current
        return False
    return _age(heartbeat_ms, checkpoint) > max_age


async def _commit(admin: Admin, translations: list[Translation]) -> None:
    by_group: dict[str, dict[tuple[str, int], int]] = {}
    for t in translations:
        by_group.setdefault(t.group, {})[(t.topic, t.partition)] = t.offset
    for group, offsets in by_group.items():
        await admin.commit_offsets(group, offsets)


async def fail_back(app: App, source: str, *, within: float = 10.0, dry_run: bool = False) -> FailoverReport:
    """Commit on ``source``, back again, the offsets the app's groups reached on its replica,
    translated through MirrorMaker's offset syncs on ``source``; then run the app without
    ``AIOSTREAM_KAFKA_FAILED_OVER``. Refused when ``source`` does not answer.

    A replica offset maps to the upstream offset of the newest sync at or before it (the next
    one when past it), so nothing read on the replica is skipped on the source; records
    produced to the replica during the failover are not on the source.
    """
    replica = app.replicas.replica_of(source)
    routed = declared_topology(app)
    async with AdminRegistry(
        routed, client_id=f"{app.name}-failback", timeout=within, clients=app.clients
    ) as admins:
        home, target = admins.cluster(source), admins.cluster(replica.cluster)
        try:
            with anyio.fail_after(within):
                await home.list_topics()
        except (ClusterConnectionError, TimeoutError) as error:
            raise FailoverError(
                f"failback to {source!r}", [f"cluster {source!r} does not answer: {error}"]
            ) from None
        syncs = await offset_syncs(target, replica.offset_syncs_on_replica) or await offset_syncs(
            home, replica.offset_syncs_on_source
        )  # on the replica with offset-syncs.topic.location=target, else on the source (the default)
        report = FailoverReport(replica.cluster, source, True)
        problems: list[str] = []
        for group, topics in _groups_on(routed, source).items():
            on_replica = await _committed(target, group, within)
            if on_replica is None:
                problems.append(f"group {group!r}: cluster {replica.cluster!r} does not answer")
                continue
            for topic in topics:
                remote = replica.remote_topic(topic)
                bounds = await home.offsets(topic)
                for (committed_topic, partition), offset in sorted(on_replica.items()):
                    if committed_topic != remote or partition not in bounds:
                        continue
                    start, end = bounds[partition]
                    upstream = _upstream(syncs.get((topic, partition), []), offset)
                    translated = start if upstream is None else min(max(upstream, start), end)
                    report.translations.append(Translation(group, topic, partition, translated, offset))
        if problems:
            raise FailoverError(f"failback of {replica.cluster!r} to {source!r}", problems)
        if not dry_run:
            await _commit(home, report.translations)
    return report


def _downstream(syncs: list[OffsetSync], upstream: int) -> int:
    """Where a source offset is on the replica by the offset syncs, as MirrorMaker translates
    (its checkpoints keep fewer syncs the further back they lie): never past a record not yet
    read on the source; -1 when no sync is at or before it."""
    best: OffsetSync | None = None
    for sync in syncs:
        if sync.upstream_offset <= upstream and (best is None or sync.upstream_offset > best.upstream_offset):
            best = sync
    if best is None:
        return -1
    return best.downstream_offset if best.upstream_offset == upstream else best.downstream_offset + 1


def _upstream(syncs: list[OffsetSync], downstream: int) -> int | None:
    """The source offset to resume at for a replica offset: no replicated record read there is
    skipped (None: no sync at or before it, so the partition's start)."""
    best: OffsetSync | None = None
    for sync in syncs:  # sorted by downstream offset
        if sync.downstream_offset > downstream:
            break
        best = sync
    if best is None:
        return None
    return best.upstream_offset if best.downstream_offset == downstream else best.upstream_offset + 1


__all__ = ["FailoverError", "FailoverReport", "Translation", "fail_back", "fail_over"]
