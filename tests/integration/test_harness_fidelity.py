"""The testing harness tells the truth: one scenario, run on real Kafka and under the harness,
gives the same observable results (retry then DLQ, manual offsets, a produce to the other
cluster consumed there)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiokafka import TopicPartition

from aiostream_kafka import App, DeadLetterQueue, Messages, Retry
from tests.helpers import committed_offsets, create_topic, eventually, read_records

FAST = Retry(initial=0.05, maximum=0.1, jitter=0)


class Order(msgspec.Struct):
    id: int
    total: float
    mark: bool = True  # False: processed but left unmarked (manual offsets)


ORDERS = [Order(1, 10.0), Order(2, -5.0), Order(3, 7.5), Order(4, 1.0, mark=False)]


class Scenario:
    """An app on two clusters, and what its handlers saw."""

    def __init__(self, primary: str, secondary: str, topic: str) -> None:
        self.topic, self.out, self.dlq = topic, f"{topic}.out", f"{topic}.dlq"
        self.attempts_on_bad: list[int] = []
        self.seen_on_secondary: list[int] = []
        self.app = app = App(
            "fidelity",
            kafka={"bootstrap_servers": primary},
            clusters={"secondary": {"bootstrap_servers": secondary}},
            group_id=f"fidelity-{uuid.uuid4().hex[:8]}",
            log_events=False,
        )

        @app.route(
            self.topic,
            payload=Order,
            retry=FAST,
            dead_letter_queue=DeadLetterQueue(self.dlq, max_retries=2),
            manual_offset_management=True,
        )
        async def on_orders(messages: Messages[Order]) -> None:
            for m in messages:
                if m.payload.total < 0:
                    self.attempts_on_bad.append(messages.attempt)
                    raise ValueError(f"order {m.payload.id}: negative total")
                await app.producers["secondary"].produce(self.out, m.payload, key=str(m.payload.id))
                if m.payload.mark:
                    messages.mark_as_consumed(m)

        @app.route(self.out, payload=Order, cluster="secondary")
        async def on_forwarded(messages: Messages[Order]) -> None:
            self.seen_on_secondary.extend(m.payload.id for m in messages)

    def observed(
        self, dead: list[tuple[int, int, str, bytes]], out: list[tuple[bytes | None, Any]], committed: Any
    ) -> dict[str, Any]:
        return {
            "dead_lettered": dead,
            "on_secondary": out,
            "committed": committed,
            "attempts_on_bad": self.attempts_on_bad,
            "seen_on_secondary": self.seen_on_secondary,
        }


async def on_real_kafka(primary: str, secondary: str, topic: str) -> dict[str, Any]:
    scenario = Scenario(primary, secondary, topic)
    await create_topic(primary, scenario.topic)
    await create_topic(primary, scenario.dlq)
    await create_topic(secondary, scenario.out)
    app = scenario.app
    async with app.running():
        for order in ORDERS:
            await app.producer.produce(scenario.topic, order)
        await eventually(lambda: len(scenario.seen_on_secondary) == 3, what="the forwarded orders")
        await eventually(lambda: len(scenario.attempts_on_bad) == 3, what="the bad order's attempts")
    dead = [
        (
            int(dict(r.headers)["source_offset"]),
            int(dict(r.headers)["attempts"]),
            dict(r.headers)["error_type"].decode(),
            r.value,
        )
        for r in await read_records(primary, scenario.dlq)
    ]
    out = [(r.key, msgspec.json.decode(r.value)) for r in await read_records(secondary, scenario.out)]
    primary_offsets = await committed_offsets(primary, app.group_id)
    secondary_offsets = await committed_offsets(secondary, app.group_id)
    committed = {
        "orders": primary_offsets.get(TopicPartition(scenario.topic, 0)),
        "forwarded": secondary_offsets.get(TopicPartition(scenario.out, 0)),
    }
    return scenario.observed(dead, out, committed)


async def under_the_harness(primary: str, secondary: str, topic: str) -> dict[str, Any]:
    scenario = Scenario(primary, secondary, topic)
    async with scenario.app.testing() as t:
        await t.feed(scenario.topic, ORDERS)
        dead = [
            (d.source_offset, d.attempts, d.error_type, d.value or b"")
            for d in t.dead_lettered(scenario.topic)
        ]
        out = [(m.key, msgspec.to_builtins(m.payload)) for m in t.produced(scenario.out, cluster="secondary")]
        committed = {
            "orders": t.committed(scenario.topic),
            "forwarded": t.committed(scenario.out, cluster="secondary"),
        }
    return scenario.observed(dead, out, committed)


async def test_the_harness_and_real_kafka_observe_the_same_scenario(
    primary: str, secondary: str, topic_name: str
) -> None:
    real = await on_real_kafka(primary, secondary, topic_name)
    harness = await under_the_harness(primary, secondary, topic_name)

    assert real == harness
    # and the scenario is the one intended, not two equally wrong runs:
    assert real["dead_lettered"] == [(1, 3, "builtins.ValueError", msgspec.json.encode(ORDERS[1]))]
    assert [key for key, _ in real["on_secondary"]] == [b"1", b"3", b"4"]
    assert real["committed"] == {"orders": 3, "forwarded": 3}  # order 4 was left unmarked
    assert real["attempts_on_bad"] == [1, 2, 3]
