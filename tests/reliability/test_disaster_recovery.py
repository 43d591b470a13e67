"""Disaster recovery on real brokers and a real MirrorMaker 2: the primary is lost, the app's
groups fail over to the replica from translated offsets, and fail back once it returns.

One MirrorMaker for the module, replicating the primary's ``dr-*`` topics and ``dr-*`` groups
to the secondary (so other tests' topics are not replicated); each test has its own topic
and group. The primary is stopped by one test and brought back by it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Messages
from aiostream_kafka.replication import FailoverError, fail_back, fail_over
from aiostream_kafka.replication.records import OffsetSync
from aiostream_kafka.replication.state import newest_checkpoints, offset_syncs
from tests.helpers import committed_offsets, eventually, eventually_true, read_all, within
from tests.kafka_clusters import KafkaClusters
from tests.reliability.scenario import Item, Report, produce_workload

#: MirrorMaker's start, a primary lost and two switches take minutes on a loaded machine: the
#: suite's 120 s guard against a hung test would cut a slow but sound run short.
pytestmark = pytest.mark.timeout(600)

COUNT = 10_000
PARTITIONS = 3
MIRRORED = "dr-.*"  # the MirrorMaker's topics and groups: this module's only


@pytest.fixture(scope="module")
def mirror(kafka: KafkaClusters) -> Iterator[None]:
    """MirrorMaker 2 replicating primary to secondary, started unless it runs (then left running)."""
    started = kafka.launcher("mirror", "status").returncode != 0
    result = kafka.launcher("mirror", "up", "--topics", MIRRORED, "--groups", MIRRORED)
    if result.returncode != 0:
        raise RuntimeError(f"could not start MirrorMaker: {result.stderr}{result.stdout}")
    yield
    if started:
        kafka.launcher("mirror", "down")


def names(kind: str) -> tuple[str, str]:
    """A topic and a group MirrorMaker replicates and checkpoints, new for each test."""
    tag = uuid.uuid4().hex[:8]
    return f"dr-{kind}-{tag}", f"dr-{kind}-group-{tag}"


def shop(kafka: KafkaClusters, topic: str, group: str, seen: list[int], *, failed_over: bool = False) -> App:
    """The same app before and after the disaster: only ``failed_over`` differs (the CLI's
    AIOSTREAM_KAFKA_FAILED_OVER, set in code here)."""
    app = App(
        "dr-shop",
        kafka={"bootstrap_servers": kafka.primary},
        clusters={"secondary": {"bootstrap_servers": kafka.secondary}},
        group_id=group,
        log_events=False,
        shutdown_timeout=10,
    )
    app.replicas.declare("secondary", of="primary")
    if failed_over:
        app.replicas.fail_over("primary")

    @app.route(topic, payload=Item, max_messages=50)
    async def record(messages: Messages[Item]) -> None:
        seen.extend(message.payload.id for message in messages)

    return app


async def checkpointed(app: App, group: str, committed: dict[tuple[str, int], int]) -> bool:
    """MirrorMaker's newest checkpoint of each of ``group``'s partitions covers its commit."""
    checkpoints = await newest_checkpoints(app.admin.cluster("secondary"), "primary.checkpoints.internal")
    return all(
        (c := checkpoints.get((group, f"primary.{topic}", partition))) is not None
        and c.upstream_offset == offset
        for (topic, partition), offset in committed.items()
    )


async def replicated(app: App, topic: str, count: int) -> bool:
    remote = f"primary.{topic}"
    replica = app.admin.cluster("secondary")
    if remote not in await replica.list_topics():
        return False
    return sum(end for _, end in (await replica.offsets(remote)).values()) == count


async def test_the_primary_is_lost_the_app_finishes_on_the_replica_then_fails_back(
    kafka: KafkaClusters, mirror: None, capsys: pytest.CaptureFixture[str]
) -> None:
    topic, group = names("orders")
    produced = await produce_workload(kafka.primary, topic, COUNT, PARTITIONS)
    seen: list[int] = []
    before = shop(kafka, topic, group, seen)
    async with before.running():
        await eventually(lambda: len(seen) >= COUNT // 2, within=120, what="half the messages processed")
    committed = {
        (tp.topic, tp.partition): offset
        for tp, offset in (await committed_offsets(kafka.primary, group)).items()
    }
    assert sum(committed.values()) == len(seen)  # a clean stop: everything processed is committed
    await eventually_true(
        lambda: replicated(before, topic, COUNT), within=120, what="all messages replicated"
    )
    await eventually_true(
        lambda: checkpointed(before, group, committed), within=120, what="the commits checkpointed"
    )

    kafka.stop("primary", kill=True)  # the disaster
    try:
        after = shop(kafka, topic, group, seen, failed_over=True)
        with within(120, "the failover"):
            report = await fail_over(after, "primary", within=5)
        assert not report.source_reachable
        translated = {(t.topic, t.partition): t for t in report.translations}
        assert set(translated) == {(f"primary.{topic}", p) for _, p in committed}  # the others start at 0
        for (_, partition), offset in committed.items():  # never past what was processed
            assert translated[(f"primary.{topic}", partition)].offset <= offset
        repeated = sum(
            offset - translated[(f"primary.{topic}", p)].offset for (_, p), offset in committed.items()
        )
        # The bound docs/disaster-recovery.md states, for commits all checkpointed: per partition,
        # back to the newest offset sync at or before the commit (offset.lag.max apart, or more).
        syncs = await offset_syncs(after.admin.cluster("secondary"), "mm2-offset-syncs.primary.internal")
        bound = sum(offset - _last_sync(syncs[(topic, p)], offset) for (_, p), offset in committed.items())
        assert repeated <= bound

        async with after.running():
            await eventually(lambda: set(seen) >= set(produced), within=180, what="every message processed")
            await after.producer.produce(f"{topic}.done", b"done")  # app.producer moved too
        over = Report.of_ids("failover", produced, seen)
        over.write(capsys)
        with capsys.disabled():
            print(
                f"[failover] repeated from the translated offsets: {repeated}, "
                f"bound from the offset syncs: {bound}"
            )
        assert over.lost == 0
        assert over.duplicates == repeated  # resumed exactly at the translated offsets
        assert await read_all(kafka.secondary, f"primary.{topic}.done") == [b"done"]
    finally:
        kafka.start("primary")

    # Failback: the groups' offsets on the replica, back on the primary through the offset syncs.
    back = shop(kafka, topic, group, seen)
    with within(120, "the failback"):
        report = await fail_back(back, "primary")
    ends = await back.admin.offsets(topic)
    again = sum(ends[t.partition][1] - t.offset for t in report.translations)  # what the syncs cannot place
    assert {t.partition for t in report.translations} == set(range(PARTITIONS))
    async with back.running():
        await eventually_true(
            lambda: _caught_up(back, group), within=120, what="the group caught up on the primary"
        )
    home = Report.of_ids("failback", produced, seen)
    home.write(capsys)
    assert home.lost == 0
    assert home.duplicates == over.duplicates + again  # resumed exactly at the offsets failback committed


def _last_sync(syncs: list[OffsetSync], upstream: int) -> int:
    return max(s.upstream_offset for s in syncs if s.upstream_offset <= upstream)


async def _caught_up(app: App, group: str) -> bool:
    info = await app.admin.consumer_group(group)
    return bool(info.partitions) and info.lag == 0


async def test_failover_is_refused_while_checkpoints_are_behind_the_group(
    kafka: KafkaClusters, mirror: None
) -> None:
    topic, group = names("stale")
    await produce_workload(kafka.primary, topic, 100, PARTITIONS)
    seen: list[int] = []
    app = shop(kafka, topic, group, seen)
    async with app.running():
        await eventually(lambda: len(seen) == 100, within=120, what="the first hundred processed")
    committed = {
        (tp.topic, tp.partition): o for tp, o in (await committed_offsets(kafka.primary, group)).items()
    }
    await eventually_true(
        lambda: checkpointed(app, group, committed), within=120, what="the commits checkpointed"
    )
    assert (await fail_over(shop(kafka, topic, group, []), "primary", dry_run=True)).source_reachable
    notes = await app.check()
    assert any(
        "replica 'secondary' of 'primary': replication lag" in n and "checkpoints fresh" in n for n in notes
    )

    kafka.launcher("mirror", "down")  # MirrorMaker stops; the group goes on
    try:
        await produce_more(kafka.primary, topic, 100, first_id=100)
        more = shop(kafka, topic, group, seen)
        async with more.running():
            await eventually(lambda: len(seen) == 200, within=120, what="the next hundred processed")
        with pytest.raises(FailoverError, match=rf"group '{group}': stale checkpoints for primary\.{topic}/"):
            await fail_over(shop(kafka, topic, group, []), "primary")
        notes = await more.check()
        assert any("checkpoints NOT fresh" in n and group in n for n in notes)
    finally:
        result = kafka.launcher("mirror", "up", "--topics", MIRRORED, "--groups", MIRRORED)
        assert result.returncode == 0, result.stderr


async def test_failover_is_refused_for_a_group_mirrormaker_never_checkpointed(
    kafka: KafkaClusters, mirror: None
) -> None:
    topic, _ = names("unmirrored")
    group = f"not-mirrored-{uuid.uuid4().hex[:8]}"  # outside MirrorMaker's groups
    await produce_workload(kafka.primary, topic, 30, PARTITIONS)
    seen: list[int] = []
    app = shop(kafka, topic, group, seen)
    async with app.running():
        await eventually(lambda: len(seen) == 30, within=120, what="the messages processed")
    await eventually_true(lambda: replicated(app, topic, 30), within=120, what="the topic replicated")
    with pytest.raises(FailoverError, match=rf"group '{group}': no checkpoint for primary\.{topic}/"):
        await fail_over(shop(kafka, topic, group, []), "primary")


async def produce_more(bootstrap: str, topic: str, count: int, first_id: int) -> None:
    """``count`` more items on ``topic`` (which exists), ids from ``first_id``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(topic, msgspec.json.encode(Item(first_id + i)), partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()
