"""Declarative topics on every cluster, and boot-time checks of multi-cluster mistakes."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest

from aiostream_kafka import App, DeadLetterQueue, Messages, TopicConfig
from aiostream_kafka.admin.check import CheckError
from aiostream_kafka.admin.migration import migrate, plan
from aiostream_kafka.cli import main
from tests.helpers import create_topic, free_port, swallow, tcp_server


async def noop(messages: Messages[bytes]) -> None:
    return None


def two_clusters(primary: str, secondary: str, **options: object) -> App:
    return App(
        "topics",
        kafka={"bootstrap_servers": primary},
        clusters={"analytics": {"bootstrap_servers": secondary}},
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        **options,  # type: ignore[arg-type]
    )


async def test_migrate_creates_a_declared_topic_on_its_own_cluster_and_then_has_nothing_to_do(
    primary: str, secondary: str, topic_name: str
) -> None:
    app = two_clusters(primary, secondary)
    config = TopicConfig(partitions=3, settings={"retention.ms": 3600000})
    app.routes.topic(topic_name, handler=noop, cluster="analytics", config=config)
    app.topics.declare(f"{topic_name}.audit", partitions=2)  # on the primary

    async with app.admin:
        changes = await plan(app.topology, app.admin)
        assert sorted((c.cluster, c.topic, c.action) for c in changes) == [
            ("analytics", topic_name, "create"),
            ("primary", f"{topic_name}.audit", "create"),
        ]
        await migrate(changes, app.admin)

        analytics = await app.admin.cluster("analytics").describe_topics([topic_name])
        assert analytics[topic_name].partitions == 3
        assert (await app.admin.cluster("analytics").describe_config(topic_name))["retention.ms"] == "3600000"
        assert topic_name not in await app.admin.list_topics()  # not on the primary
        assert await plan(app.topology, app.admin) == []  # idempotent


async def test_migrate_grows_partitions_and_changes_settings_but_never_shrinks(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name, partitions=2)
    await create_topic(primary, f"{topic_name}-big", partitions=4)
    app = App("grow", kafka={"bootstrap_servers": primary})
    app.topics.declare(topic_name, partitions=5, settings={"cleanup.policy": "compact"})
    app.topics.declare(f"{topic_name}-big", partitions=2)

    async with app.admin:
        changes = await plan(app.topology, app.admin)
        actions = sorted((c.topic, c.action) for c in changes)
        assert actions == [
            (topic_name, "reconfigure"),
            (topic_name, "repartition"),
            (f"{topic_name}-big", "refused"),
        ]
        [refused] = [c for c in changes if c.action == "refused"]
        assert "partitions never shrink" in refused.detail
        applied = await migrate(changes, app.admin)

        assert len(applied) == 2
        described = await app.admin.describe_topics([topic_name, f"{topic_name}-big"])
        assert (described[topic_name].partitions, described[f"{topic_name}-big"].partitions) == (5, 4)
        assert (await app.admin.describe_config(topic_name))["cleanup.policy"] == "compact"


async def test_migrate_can_be_limited_to_one_cluster(primary: str, secondary: str, topic_name: str) -> None:
    app = two_clusters(primary, secondary)
    app.topics.declare(topic_name, cluster="analytics")
    app.topics.declare(topic_name)

    async with app.admin:
        changes = await plan(app.topology, app.admin, cluster="analytics")

    assert [(c.cluster, c.topic) for c in changes] == [("analytics", topic_name)]


async def test_check_names_both_clusters_when_a_route_points_at_the_wrong_one(
    primary: str, secondary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)  # it lives on the primary...
    app = two_clusters(primary, secondary)
    app.routes.topic(topic_name, handler=noop, cluster="analytics")  # ...but the route says analytics

    with pytest.raises(CheckError) as raised:
        await app.check(within=30)  # the real clusters answer in time, however loaded the machine

    [problem] = raised.value.problems
    assert f"route for topic {topic_name!r}" in problem
    assert f"is not on cluster 'analytics' ({secondary}) but is on 'primary'" in problem


async def test_check_finds_missing_dead_letter_topics_and_passes_once_they_exist(
    primary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    app = App("dlq-check", kafka={"bootstrap_servers": primary})
    app.routes.topic(topic_name, handler=noop, dead_letter_queue=DeadLetterQueue(f"{topic_name}.dlq"))

    with pytest.raises(CheckError, match=rf"dead-letter queue of route for topic '{topic_name}'"):
        await app.check()

    await create_topic(primary, f"{topic_name}.dlq")
    assert await app.check() == []


async def test_a_dlq_declared_with_its_route_is_migrated_onto_the_dlqs_cluster_and_checked_there(
    primary: str, secondary: str, topic_name: str
) -> None:
    await create_topic(primary, topic_name)
    app = two_clusters(primary, secondary)
    dlq = DeadLetterQueue(f"{topic_name}.dlq", cluster="analytics", config=TopicConfig(partitions=2))
    app.routes.topic(topic_name, handler=noop, dead_letter_queue=dlq)

    with pytest.raises(
        CheckError, match=rf"'{topic_name}.dlq' does not exist on cluster 'analytics'.*migrate"
    ):
        await app.check()
    async with app.admin:
        changes = await plan(app.topology, app.admin)
        assert [str(c) for c in changes] == [
            f"analytics: create {topic_name}.dlq (2 partitions, replication 1)"
        ]
        await migrate(changes, app.admin)
        assert await plan(app.topology, app.admin) == []
        described = await app.admin.cluster("analytics").describe_topics([f"{topic_name}.dlq"])
        assert described[f"{topic_name}.dlq"].partitions == 2
    assert await app.check() == []


async def test_auto_create_topics_creates_missing_declared_topics_instead_of_failing(
    primary: str, topic_name: str
) -> None:
    app = App("auto", kafka={"bootstrap_servers": primary}, auto_create_topics=True)
    app.routes.topic(topic_name, handler=noop, config=TopicConfig(partitions=2))

    notes = await app.check()

    assert notes == [f"created topic {topic_name!r} on cluster 'primary' (route for topic {topic_name!r})"]
    async with app.admin:
        assert (await app.admin.describe_topics([topic_name]))[topic_name].partitions == 2


def with_cluster(primary: str, name: str, bootstrap: str) -> App:
    return App(
        "unreachable", kafka={"bootstrap_servers": primary}, clusters={name: {"bootstrap_servers": bootstrap}}
    )


async def only_problem(app: App, within: float = 30) -> str:
    with pytest.raises(CheckError) as raised:
        await app.check(within=within)
    [problem] = raised.value.problems
    return problem


async def test_check_says_a_cluster_refused_at_once_not_that_it_did_not_answer_in_time(primary: str) -> None:
    address = f"127.0.0.1:{free_port()}"

    problem = await only_problem(with_cluster(primary, "gone", address))

    assert problem.startswith(
        f"cannot connect to cluster 'gone' ({address}, PLAINTEXT): connection refused at {address}: "
        "nothing listens there; is the broker running, and is this its host and port? [KafkaConnectionError: "
    )
    assert "did not answer" not in problem


async def test_check_says_a_clusters_name_does_not_resolve(primary: str) -> None:
    problem = await only_problem(with_cluster(primary, "typo", "no-such-host.invalid:9092"))

    assert problem.startswith(
        "cannot connect to cluster 'typo' (no-such-host.invalid:9092, PLAINTEXT): "
        "the name 'no-such-host.invalid' does not resolve ("
    )


async def test_check_says_a_cluster_that_accepts_but_never_answers_timed_out() -> None:
    async with tcp_server(swallow) as address:
        # The only cluster: a real one would have to answer within the same second.
        app = App("unreachable", primary="hanging", kafka={"bootstrap_servers": address})
        problem = await only_problem(app, within=1)

    assert f"timed out: {address} accepts connections but answered no Kafka request within 1s" in problem
    # the check's own deadline, or aiokafka's request timeout, whichever comes first
    assert problem.startswith(
        (
            f"cluster 'hanging' ({address}) did not answer within 1s",
            f"cannot connect to cluster 'hanging' ({address}",
        )
    )


def write_app(tmp_path: Path, primary: str, secondary: str, topic: str) -> str:
    module = f"topics_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from aiostream_kafka import App, TopicConfig\n"
        f"app = App('cli', kafka={{'bootstrap_servers': {primary!r}}},\n"
        f"          clusters={{'analytics': {{'bootstrap_servers': {secondary!r}}}}})\n"
        "async def handle(messages): ...\n"
        f"app.routes.topic({topic!r}, handler=handle, cluster='analytics',\n"
        "                 config=TopicConfig(partitions=2))\n"
    )
    return f"{module}:app"


def test_the_topics_commands_plan_migrate_and_list(
    primary: str, secondary: str, topic_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    target = write_app(tmp_path, primary, secondary, topic_name)

    anyio.run(create_topic, secondary, f"{topic_name}.not-the-apps")

    assert main(["topics", "list", target]) == 0
    route = f"route for topic {topic_name!r}"
    assert capsys.readouterr().out == f"analytics\t{topic_name}\tmissing\t{route}\n"
    assert main(["topics", "plan", target]) == 0
    assert f"analytics: create {topic_name} (2 partitions, replication 1)" in capsys.readouterr().out
    assert main(["topics", "migrate", target]) == 0
    assert f"done: analytics: create {topic_name}" in capsys.readouterr().out
    assert main(["topics", "plan", target]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["topics", "list", target, "--cluster", "analytics"]) == 0
    assert capsys.readouterr().out == f"analytics\t{topic_name}\t2 partitions\t{route}\n"
    assert main(["topics", "list", target, "--cluster", "analytics", "--all"]) == 0
    every = capsys.readouterr().out
    assert f"analytics\t{topic_name}\t2 partitions\t{route}\n" in every
    assert f"analytics\t{topic_name}.not-the-apps\t1 partitions\n" in every
    assert main(["check", target]) == 0
    assert main(["topics", "plan", target, "--cluster", "nowhere"]) == 2
    assert "no cluster named 'nowhere'" in capsys.readouterr().err


def test_run_with_check_refuses_to_start_an_app_routed_to_the_wrong_cluster(
    primary: str, secondary: str, topic_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    anyio.run(create_topic, primary, topic_name)  # on the primary, while the route says analytics
    monkeypatch.syspath_prepend(str(tmp_path))
    target = write_app(tmp_path, primary, secondary, topic_name)

    assert main(["run", target, "--check"]) == 2

    error = capsys.readouterr().err
    assert f"topic {topic_name!r} is not on cluster 'analytics' ({secondary}) but is on 'primary'" in error


def test_run_with_check_says_what_it_found_before_it_runs(
    primary: str, secondary: str, topic_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    anyio.run(create_topic, secondary, topic_name)
    monkeypatch.syspath_prepend(str(tmp_path))
    target = write_app(tmp_path, primary, secondary, topic_name)
    ran: list[str] = []
    monkeypatch.setattr(App, "run", lambda self: ran.append(capsys.readouterr().out))

    assert main(["run", target, "--check"]) == 0

    assert ran == ["ok: every cluster answered (primary, analytics) and every topic is on its cluster\n"]
