"""What ``info`` reports about an app, as plain data: its JSON output, and what its tables are made of.

Read from the topology alone: nothing connects, and secrets are already masked there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, get_origin

from aiostream_kafka.app import DEFAULT_RETRY_BACKOFF, App
from aiostream_kafka.cli.loading import qualified_name
from aiostream_kafka.contracts.checks import callable_name
from aiostream_kafka.jobs import Job
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions
from aiostream_kafka.routing.route import Route
from aiostream_kafka.routing.topology import RoutedTopic, Topology
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.flow import flow_settings


def describe(
    topology: Topology, jobs: Iterable[Job] = (), retry_backoff: Backoff = DEFAULT_RETRY_BACKOFF
) -> dict[str, Any]:
    """Every fact ``info`` shows, as plain data: the JSON output, and what the tables are made of.
    ``retry_backoff``: the app's, which routes without a ``Retry`` of their own wait by."""
    return {
        "jobs": [_job(job, now=time.time()) for job in jobs],
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
                _topic(topic, group.id, retry_backoff)
                for group in topology.subscription_groups
                for topic in group.topics
            ),
            *(_topic(topic, None, retry_backoff) for topic in topology.inactive),
        ],
        "producers": [
            {
                "cluster": name,
                "bootstrap_servers": cluster.servers,
                "primary": name == topology.producer_cluster,
                "compression_type": cluster.settings.producer.get("compression_type") or "none",
                "transactional": "transactional_id" in cluster.settings.producer,
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


def replica_facts(app: App) -> list[dict[str, Any]]:
    """Each declared MirrorMaker replica, and whether the app runs on it instead of its source."""
    return app.replicas.described()


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


def _topic(topic: RoutedTopic, subscription_group: str | None, retry_backoff: Backoff) -> dict[str, Any]:
    route = topic.route
    return {
        "topic": route.topic,
        "cluster": topic.cluster,
        "subscription_group": subscription_group,
        "handler": route.handler_name,
        "payload": _payload_name(route.payload),
        "format": _format(route),
        "exactly_once": route.exactly_once,
        "virtual_partitions": _virtual_partitions(route.virtual_partitions),
        "active": subscription_group is not None,
        "retry": _retry(route.retry, retry_backoff),
        "dead_letter_queue": _dead_letter_queue(topic),
        "flow": flow_settings(route),
    }


def _virtual_partitions(spec: VirtualPartitions | None) -> dict[str, Any] | None:
    """How many run at once and what splits a batch (None: the route has none)."""
    if spec is None:
        return None
    return {
        "concurrency": spec.concurrency,
        "key": callable_name(spec.key) if spec.key is not None else None,  # None: the message key
    }


def _retry(retry: Retry | None, app_backoff: Backoff) -> dict[str, Any]:
    """How long a failing batch waits before it is tried again: the route's ``Retry``, else the app's."""
    backoff = retry.as_backoff() if retry is not None else app_backoff
    return {
        "initial": backoff.initial,
        "maximum": backoff.maximum,
        "multiplier": backoff.multiplier,
        "jitter": backoff.jitter,
        "transient": [qualified_name(kind) for kind in retry.transient] if retry is not None else [],
        "source": "route" if retry is not None else "app",
    }


def _dead_letter_queue(topic: RoutedTopic) -> dict[str, Any] | None:
    queue = topic.route.dead_letter_queue
    if queue is None:
        return None
    return {
        "topic": queue.topic,
        "cluster": topic.dead_letter_cluster if queue.topic is not None else None,
        "max_retries": queue.max_retries,
        "independent": queue.independent,
        "retry_decode_errors": queue.retry_decode_errors,
        "dispatch_on": [qualified_name(kind) for kind in queue.dispatch_on],
        "declared": queue.config is not None,
    }


def _payload_name(payload: Any) -> str:
    if isinstance(payload, type) and get_origin(payload) is None:
        return qualified_name(payload)
    return repr(payload).replace("typing.", "")


def _format(route: Route) -> str:
    if route.decoder is not None:
        return f"decoder {getattr(route.decoder, '__qualname__', repr(route.decoder))}"
    return "raw" if route.payload is bytes else route.format


def _job(job: Job, *, now: float) -> dict[str, Any]:
    """A job, and for a recurring one its schedule and next tick from now (nothing connects, so
    not the schedule topic's last tick: a stretch missed while no process ran comes at once)."""
    facts: dict[str, Any] = {"name": job.name, "topic": job.topic, "cluster": job.cluster}
    if job.schedule is not None:
        tick = datetime.fromtimestamp(job.schedule.next_tick(now), timezone.utc)
        facts |= {"schedule": job.schedule.expression, "next_tick": tick.isoformat()}
    return facts
