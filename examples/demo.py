"""What `make demo` runs: the multi-cluster example, fed from both sides, then a summary.

Produces three events to ``example`` on the primary and three to ``example2`` on the
secondary, runs the app until every handler has seen what it should (the three forwarded
events included), stops it gracefully and prints who received what from which cluster.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from aiostream_kafka import MonitorEvent
from examples.multi_cluster import SECONDARY, Event, app

EXPECTED = {("example", "primary"): 3, ("example2", SECONDARY): 6}


async def main() -> int:
    received: Counter[tuple[str, str]] = Counter()

    def count(event: MonitorEvent) -> None:
        received[(event["topic"], event["cluster"])] += event["count"]

    app.monitor.subscribe("batch.processed", count)
    async with app.running():
        for i in range(1, 4):
            await app.producer.produce("example", Event(i, f"hello primary {i}"), key=str(i))
            await app.producers[SECONDARY].produce("example2", Event(100 + i, f"hello secondary {i}"))
        for _ in range(300):
            if all(received[key] >= n for key, n in EXPECTED.items()):
                break
            await asyncio.sleep(0.1)

    print("\nWhat each handler received, by cluster:")
    print(f"  {'topic':<10} {'cluster':<18} {'messages':>8} {'expected':>8}")
    for (topic, cluster), expected in EXPECTED.items():
        print(f"  {topic:<10} {cluster:<18} {received[(topic, cluster)]:>8} {expected:>8}")
    ok = all(received[key] >= n for key, n in EXPECTED.items())
    print("\nThe app stopped cleanly." if ok else "\nSome messages did not arrive in time.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
