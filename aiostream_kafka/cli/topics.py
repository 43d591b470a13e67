"""The ``topics`` command: plan or migrate the declared topics on every cluster, or list what is there."""

from __future__ import annotations

import argparse

import anyio

from aiostream_kafka.admin.migration import migrate, plan
from aiostream_kafka.app import App
from aiostream_kafka.cli.loading import load_app


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    return int(anyio.run(_topics, app, args.action, args.cluster))


async def _topics(app: App, action: str, cluster: str | None) -> int:
    async with app.admin:
        if action == "list":
            names = [cluster] if cluster else list(app.topology.clusters)
            for name in names:
                admin = app.admin.cluster(name)
                for topic, description in (await admin.describe_topics(await admin.list_topics())).items():
                    print(f"{name}\t{topic}\t{description.partitions} partitions")
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
