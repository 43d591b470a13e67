"""What an exactly-once route or a transactional producer cannot be, refused where declared."""

from __future__ import annotations

import pytest

from aiostream_kafka import App, ConfigError, DeadLetterQueue, Messages


async def handle(messages: Messages[bytes]) -> None:
    return None


def app(**kafka: object) -> App:
    return App(
        "eos",
        kafka={"bootstrap_servers": "127.0.0.1:9092", **kafka},
        clusters={"b": {"bootstrap_servers": "127.0.0.1:9093"}},
    )


def test_exactly_once_takes_a_boolean() -> None:
    with pytest.raises(
        ConfigError, match="route for topic 'orders': exactly_once must be True or False, not 'yes'"
    ):
        app().routes.topic("orders", handler=handle, exactly_once="yes")  # type: ignore[arg-type]


def test_an_exactly_once_route_commits_whole_batches_so_it_takes_no_manual_offsets() -> None:
    with pytest.raises(ConfigError, match="cannot take manual_offset_management=True"):
        app().routes.topic("orders", handler=handle, exactly_once=True, manual_offset_management=True)


def test_an_exactly_once_route_reads_committed_records_only() -> None:
    with pytest.raises(ConfigError, match="drop isolation_level='read_uncommitted'"):
        app().routes.topic("orders", handler=handle, exactly_once=True, isolation_level="read_uncommitted")


def test_a_cluster_reading_uncommitted_records_is_refused_for_an_exactly_once_route_naming_it() -> None:
    declared = app(isolation_level="read_uncommitted")
    declared.routes.topic("orders", handler=handle, exactly_once=True)
    with pytest.raises(ConfigError, match="cluster 'primary' sets isolation_level='read_uncommitted'"):
        _ = declared.topology


def test_a_dead_letter_queue_on_another_cluster_is_refused_when_declared_naming_both() -> None:
    with pytest.raises(ConfigError, match="dead-letter queue is on cluster 'b' and the topic on 'primary'"):
        app().routes.topic(
            "orders",
            handler=handle,
            cluster="primary",
            exactly_once=True,
            dead_letter_queue=DeadLetterQueue("orders.dlq", cluster="b"),
        )


def test_a_dead_letter_queue_on_another_cluster_is_refused_by_the_topology_when_only_it_knows() -> None:
    declared = app()  # no cluster= on the route: the primary, which only the topology resolves
    declared.routes.topic(
        "orders",
        handler=handle,
        exactly_once=True,
        dead_letter_queue=DeadLetterQueue("orders.dlq", cluster="b"),
    )
    with pytest.raises(ConfigError, match="dead-letter queue is on cluster 'b' and the topic on 'primary'"):
        _ = declared.topology


def test_a_skipping_dead_letter_queue_names_no_cluster_to_conflict_with() -> None:
    declared = app()
    declared.routes.topic(
        "orders", handler=handle, exactly_once=True, dead_letter_queue=DeadLetterQueue(None)
    )
    assert declared.topology.topics[0].route.exactly_once


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"enable_idempotence": False}, "transactional_id needs an idempotent producer"),
        ({"acks": 1}, "transactional_id needs acks='all'"),
        ({"request.required.acks": "0"}, "not acks=0"),
    ],
)
def test_a_transactional_producer_is_idempotent_and_waits_for_all_replicas(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        app(transactional_id="orders-1", **settings)


def test_a_transactional_producer_may_say_what_it_must_be() -> None:
    declared = app(transactional_id="orders-1", enable_idempotence=True, acks=-1)
    assert declared.topology.transactional
