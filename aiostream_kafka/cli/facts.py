"""What ``info`` reports about an app, as plain data: its JSON output, and what its tables are made of.

Read from the topology alone: nothing connects, and secrets are already masked there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_origin

from aiostream_kafka.app import App
from aiostream_kafka.cli.loading import qualified_name
from aiostream_kafka.jobs import Job
from aiostream_kafka.routing.route import Route
from aiostream_kafka.routing.topology import Topology


def describe(topology: Topology, jobs: Iterable[Job] = ()) -> dict[str, Any]:
    """Every fact ``info`` shows, as plain data: the JSON output, and what the tables are made of."""
    return {
        "jobs": [{"name": job.name, "topic": job.topic, "cluster": job.cluster} for job in jobs],
        "clusters": [
            {
                "name": cluster.name,
                "bootstrap_servers": cluster.servers,
                "primary": cluster is topology.primary,
                "inline": cluster.inline,
                "security_protocol": cluster.settings.identity["security_protocol"],
                "settings": cluster.settings.redacted(),
            }
            for cluster in topology.clusters.values()
        ],
        "subscription_groups": [
            {
                "id": group.id,
                "cluster": group.cluster,
                "group_id": group.group_id,
                "topics": list(group.topic_names),
                "max_messages": group.max_messages,
                "max_wait_ms": group.max_wait_ms,
                "max_poll_records": group.max_poll_records,
                "initial_offset": group.initial_offset,
            }
            for group in topology.subscription_groups
        ],
        "topics": [
            *(
                _topic(topic.route, group.cluster, group.id)
                for group in topology.subscription_groups
                for topic in group.topics
            ),
            *(_topic(topic.route, topic.cluster, None) for topic in topology.inactive),
        ],
        "producers": [
            {
                "cluster": name,
                "bootstrap_servers": cluster.servers,
                "primary": name == topology.producer_cluster,
                "compression_type": cluster.settings.producer.get("compression_type") or "none",
            }
            for name, cluster in topology.clusters.items()
        ],
        "declared_topics": [
            {
                "topic": d.name,
                "cluster": d.cluster,
                "partitions": d.config.partitions,
                "replication_factor": d.config.replication_factor,
                "settings": d.config.wanted_settings(),
                "source": d.source,
            }
            for d in topology.declared
        ],
        "on_several_clusters": {
            name: clusters
            for name in dict.fromkeys([t.name for t in topology.topics] + [d.name for d in topology.declared])
            if len(clusters := topology.clusters_of(name)) > 1
        },
    }


def web_facts(app: App) -> dict[str, Any] | None:
    """Where the app's Web UI status reports go, if it sends them."""
    web = app.web
    if not web.enabled:
        return None
    return {
        "cluster": web.cluster,
        "reports_topic": web.reports_topic,
        "errors_topic": web.errors_topic,
        "interval": web.interval,
    }


def _topic(route: Route, cluster: str, subscription_group: str | None) -> dict[str, Any]:
    return {
        "topic": route.topic,
        "cluster": cluster,
        "subscription_group": subscription_group,
        "handler": route.handler_name,
        "payload": _payload_name(route.payload),
        "format": _format(route),
        "active": subscription_group is not None,
    }


def _payload_name(payload: Any) -> str:
    if isinstance(payload, type) and get_origin(payload) is None:
        return qualified_name(payload)
    return repr(payload).replace("typing.", "")


def _format(route: Route) -> str:
    if route.decoder is not None:
        return f"decoder {getattr(route.decoder, '__qualname__', repr(route.decoder))}"
    return "raw" if route.payload is bytes else route.format
