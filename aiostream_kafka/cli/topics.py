"""The ``topics`` command: plan or migrate the declared topics on every cluster, or list the
app's topics (routed, dead-letter, declared) as they are there; ``--all``, every topic."""

from __future__ import annotations

import argparse

import anyio

from aiostream_kafka.admin.check import needed_topics
from aiostream_kafka.admin.migration import migrate, plan
from aiostream_kafka.app import App
from aiostream_kafka.cli.loading import load_app


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    return int(anyio.run(_topics, app, args.action, args.cluster, args.all))


async def _topics(app: App, action: str, cluster: str | None, every: bool) -> int:
    async with app.admin:
        if action == "list":
            await _list(app, cluster, every)
            return 0
        changes = await plan(app.topology, app.admin, cluster=cluster)
        if action == "migrate":
            for change in await migrate(changes, app.admin):
                print(f"done: {change}")
            refused = [change for change in changes if change.action == "refused"]
            for change in refused:
                print(f"refused: {change}")
            return 1 if refused else 0
        for change in changes:
            print(change)
        if not changes:
            print("nothing to do: every declared topic matches on every cluster")
        return 0


async def _list(app: App, cluster: str | None, every: bool) -> None:
    """``cluster\ttopic\tN partitions\twho needs it``: the app's topics (missing ones too), or all."""
    users: dict[tuple[str, str], list[str]] = {}
    for home, name, who in needed_topics(app.topology):
        users.setdefault((home, name), []).append(who)
    for name in [cluster] if cluster else list(app.topology.clusters):
        admin = app.admin.cluster(name)
        existing = await admin.list_topics()
        wanted = existing if every else [topic for home, topic in users if home == name]
        described = await admin.describe_topics([topic for topic in wanted if topic in existing])
        for topic in sorted(wanted):
            state = f"{described[topic].partitions} partitions" if topic in described else "missing"
            print("\t".join([name, topic, state, "; ".join(users.get((name, topic), []))]).rstrip("\t"))
