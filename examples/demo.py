"""What `make demo` runs: for now, proof that both local clusters answer."""

from __future__ import annotations

import asyncio
import os

from aiokafka.admin import AIOKafkaAdminClient

CLUSTERS = {
    "primary": os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092"),
    "secondary": os.environ.get("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:29092"),
}


async def main() -> None:
    for name, bootstrap in CLUSTERS.items():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            cluster_id = (await admin.describe_cluster())["cluster_id"]
        finally:
            await admin.close()
        print(f"{name:<10} {bootstrap:<18} cluster id {cluster_id}")
    print("The multi-cluster example is coming with the core runtime.")


if __name__ == "__main__":
    asyncio.run(main())
