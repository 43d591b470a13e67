"""Disaster recovery with MirrorMaker 2 (docs/disaster-recovery.md), on the local clusters.

The app consumes orders on the primary; the secondary holds MirrorMaker's replica of it.
``python -m examples.disaster_recovery`` (``make demo-dr``) tells the whole story: MirrorMaker
up, 1,000 orders, the app handles about half, the primary is killed, ``aiostream-kafka
failover``, the same app finishes on the replica, the primary comes back, ``failback``.

    aiostream-kafka info examples.disaster_recovery:app      # DR_DEMO_RUN=<run> names a run's topic
    aiostream-kafka failover examples.disaster_recovery:app --from primary --dry-run
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaProducer

from aiostream_kafka import App, Messages
from aiostream_kafka.admin import TopicSpec
from aiostream_kafka.replication import FailoverError, fail_over

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")
SECONDARY = os.environ.get("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:29092")
#: One topic and group per run of the demo (MirrorMaker replicates ``dr-*``); the
#: commands it runs find them through DR_DEMO_RUN.
RUN = os.environ.get("DR_DEMO_RUN") or (uuid.uuid4().hex[:8] if __name__ == "__main__" else "1")
os.environ["DR_DEMO_RUN"] = RUN
TOPIC = f"dr-demo-orders-{RUN}"
MIRRORED = "dr-.*"  # MirrorMaker's topics and groups, as tests/reliability/test_disaster_recovery.py
ORDERS = 1_000
LAUNCHER = Path(__file__).resolve().parents[1] / "tools" / "kafka" / "localkafka.py"


class Order(msgspec.Struct):
    id: int


class Handled:
    """Order ids handled, and an event when a number of them is reached."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.wanted = 0
        self.reached = asyncio.Event()

    def add(self, ids: list[int]) -> None:
        self.ids += ids
        if len(set(self.ids)) >= self.wanted:
            self.reached.set()

    async def until(self, count: int) -> None:
        self.wanted, self.reached = count, asyncio.Event()
        self.add([])
        await self.reached.wait()


def make_app(handled: Handled | None = None) -> App:
    """The app, the same before and after the disaster: AIOSTREAM_KAFKA_FAILED_OVER decides."""
    app = App(
        "dr-demo",
        kafka={"bootstrap_servers": PRIMARY},
        clusters={"secondary": {"bootstrap_servers": SECONDARY}},
        group_id=f"dr-demo-group-{RUN}",
        log_events=False,
    )
    app.replicas.declare("secondary", of="primary")

    @app.route(TOPIC, payload=Order, max_messages=20)
    async def on_orders(messages: Messages[Order]) -> None:
        if handled is not None:
            handled.add([m.payload.id for m in messages])

    return app


app = make_app()


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def launcher(*args: str) -> None:
    subprocess.run([sys.executable, str(LAUNCHER), *args], check=True)


def cli(*args: str, **env: str) -> None:
    subprocess.run([sys.executable, "-m", "aiostream_kafka", *args], check=True, env={**os.environ, **env})


async def main() -> int:
    step(f"MirrorMaker 2: primary -> secondary, topics and groups {MIRRORED}")
    launcher("mirror", "up", "--topics", MIRRORED, "--groups", MIRRORED)

    step(f"{ORDERS} orders to {TOPIC} on the primary")
    await app.admin.create_topics([TopicSpec(TOPIC, partitions=3)])
    producer = AIOKafkaProducer(bootstrap_servers=PRIMARY)
    await producer.start()
    for i in range(ORDERS):
        await producer.send(TOPIC, msgspec.json.encode(Order(i)), key=str(i).encode())
    await producer.stop()

    handled = Handled()
    before = make_app(handled)
    async with before.running():
        await handled.until(ORDERS // 2)
    print(f"the app handled {len(handled.ids)} orders on the primary and stopped")

    step("waiting for MirrorMaker to replicate and checkpoint the group")
    while True:
        try:
            report = await fail_over(make_app(), "primary", dry_run=True)
        except FailoverError:
            await asyncio.sleep(0.5)
            continue
        if report.translations and await _replicated(before):
            break
        await asyncio.sleep(0.5)

    step("the disaster: the primary is killed")
    launcher("stop", "primary", "--kill")
    try:
        step("aiostream-kafka failover examples.disaster_recovery:app --from primary")
        cli("failover", "examples.disaster_recovery:app", "--from", "primary", "--timeout", "5")

        step("the same app, AIOSTREAM_KAFKA_FAILED_OVER=primary: it finishes on the replica")
        os.environ["AIOSTREAM_KAFKA_FAILED_OVER"] = "primary"
        after = make_app(handled)
        async with after.running():
            await handled.until(ORDERS)
        del os.environ["AIOSTREAM_KAFKA_FAILED_OVER"]
        ids, unique = handled.ids, set(handled.ids)
        print(
            f"orders={ORDERS} handled={len(ids)} unique={len(unique)} "
            f"duplicates={len(ids) - len(unique)} lost={len(set(range(ORDERS)) - unique)}"
        )
    finally:
        step("the primary is back")
        launcher("start", "primary")

    step("aiostream-kafka failback examples.disaster_recovery:app --to primary")
    cli("failback", "examples.disaster_recovery:app", "--to", "primary")
    return 0


async def _replicated(app: App) -> bool:
    replica = app.admin.cluster("secondary")
    remote = f"primary.{TOPIC}"
    if remote not in await replica.list_topics():
        return False
    return sum(end for _, end in (await replica.offsets(remote)).values()) == ORDERS


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
