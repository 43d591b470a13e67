"""The ``info`` command: an app's clusters, subscription groups, topics and producers, as tables or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from aiostream_kafka.cli.facts import describe, replica_facts, web_facts
from aiostream_kafka.cli.loading import load_app
from aiostream_kafka.runtime.flow import describe_flow


def command(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    facts = describe(app.topology, app.jobs, app.retry_backoff)
    facts["web"] = web_facts(app)
    facts["replicas"] = replica_facts(app)
    if args.json:
        print(json.dumps({"app": app.name, **facts}, indent=2, default=repr))
    else:
        print(render_info(app.name, facts))
    return 0


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to their widest cell, two spaces apart; no trailing spaces."""
    if not rows:
        return f"{indent}(none)"
    widths = [max(map(len, column)) for column in zip(headers, *rows, strict=True)]
    return "\n".join(
        (indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip()
        for row in [headers, *rows]
    )


def render_info(app_name: str, facts: dict[str, Any]) -> str:
    """The human-readable ``info``: one table per kind of thing, in the order data flows."""
    clusters = [
        [
            c["name"],
            "primary" if c["primary"] else "inline" if c["inline"] else "named",
            c["bootstrap_servers"],
            c["security_protocol"],
            " ".join(
                f"{key}={value}"
                for key, value in c["settings"].items()
                if key not in {"bootstrap_servers", "security_protocol"}
            ),
        ]
        for c in facts["clusters"]
    ]
    groups = [
        [
            g["id"],
            g["cluster"],
            g["group_id"],
            ", ".join(g["topics"]),
            str(g["max_messages"]),
            str(g["max_wait_ms"]),
            "auto" if g["max_poll_records"] is None else str(g["max_poll_records"]),
            g["initial_offset"],
        ]
        for g in facts["subscription_groups"]
    ]
    topics = [
        [
            t["topic"],
            t["cluster"],
            t["subscription_group"] or "(inactive)",
            t["handler"],
            t["payload"],
            t["format"],
            "yes" if t["exactly_once"] else "",
        ]
        for t in facts["topics"]
    ]
    producers = [
        [
            p["cluster"],
            p["bootstrap_servers"],
            "primary" if p["primary"] else "",
            p["compression_type"],
            ("app.producer, " if p["primary"] else "") + f'app.producers["{p["cluster"]}"]',
        ]
        for p in facts["producers"]
    ]
    sections = [
        f"App {app_name!r} (nothing connected; secrets shown as ***)",
        "",
        "Clusters",
        render_table(["NAME", "ROLE", "BOOTSTRAP SERVERS", "SECURITY", "SETTINGS"], clusters),
        "",
        "Subscription groups (one consumer each)",
        render_table(
            ["ID", "CLUSTER", "GROUP ID", "TOPICS", "MAX MESSAGES", "MAX WAIT MS", "POLL", "INITIAL OFFSET"],
            groups,
        ),
        "",
        "Topics",
        render_table(
            ["TOPIC", "CLUSTER", "SUBSCRIPTION GROUP", "HANDLER", "PAYLOAD", "FORMAT", "EXACTLY ONCE"], topics
        ),
        "",
        "Failures (each batch retried after the backoff; a message given up on goes to the DLQ)",
        render_table(
            ["TOPIC", "CLUSTER", "RETRY BACKOFF", "DEAD-LETTER QUEUE"],
            [
                [t["topic"], t["cluster"], _retry(t["retry"]), _dead_letter(t["dead_letter_queue"])]
                for t in facts["topics"]
            ],
        ),
        *_virtual_partitions(facts["topics"]),
        "",
        "Producers (one per cluster)",
        render_table(["CLUSTER", "BOOTSTRAP SERVERS", "ROLE", "COMPRESSION", "USE AS"], producers),
    ]
    held_back = [[t["topic"], t["cluster"], describe_flow(t["flow"])] for t in facts["topics"] if t["flow"]]
    if held_back:
        sections += [
            "",
            "Held back from handlers (skipped messages are committed; a held partition pauses)",
            render_table(["TOPIC", "CLUSTER", "EXPIRY, DELAY, FILTER, THROTTLE"], held_back),
        ]
    if facts["declared_topics"]:
        declared = [
            [
                d["topic"],
                d["cluster"],
                str(d["partitions"]),
                str(d["replication_factor"]),
                _settings(d["settings"]),
            ]
            for d in facts["declared_topics"]
        ]
        sections += [
            "",
            "Declared topics (aiostream-kafka topics plan / migrate)",
            render_table(["TOPIC", "CLUSTER", "PARTITIONS", "REPLICATION", "SETTINGS"], declared),
        ]
    if facts["jobs"]:
        jobs = [[j["name"], j["topic"], j["cluster"]] for j in facts["jobs"]]
        sections += ["", "Jobs (enqueued to)", render_table(["JOB", "TOPIC", "CLUSTER"], jobs)]
        scheduled = [[j["name"], j["schedule"], j["next_tick"]] for j in facts["jobs"] if "schedule" in j]
        if scheduled:
            sections += [
                "",
                "Recurring jobs (cron, UTC)",
                render_table(["JOB", "SCHEDULE", "NEXT TICK"], scheduled),
            ]
    web = facts.get("web")
    if web:
        sections += [
            "",
            "Web UI status reports",
            render_table(
                ["CLUSTER", "REPORTS TOPIC", "ERRORS TOPIC", "EVERY"],
                [[web["cluster"], web["reports_topic"], web["errors_topic"], f"{web['interval']:g}s"]],
            ),
        ]
    if facts.get("replicas"):
        replicas = [
            [
                r["cluster"],
                r["replica_of"],
                r["policy"],
                r["topics_as"],
                r["checkpoints_topic"],
                f"yes: runs on {r['cluster']}" if r["failed_over"] else "no",
            ]
            for r in facts["replicas"]
        ]
        sections += [
            "",
            "Replicas (MirrorMaker 2; aiostream-kafka failover / failback)",
            render_table(
                ["CLUSTER", "REPLICA OF", "POLICY", "TOPICS AS", "CHECKPOINTS", "FAILED OVER"], replicas
            ),
        ]
    if facts["on_several_clusters"]:
        sections += ["", "Warnings"]
        sections += [
            f"  topic {name!r} is used on {len(clusters)} clusters ({', '.join(clusters)}): "
            f"check that each route points at the cluster you mean"
            for name, clusters in facts["on_several_clusters"].items()
        ]
    return "\n".join(sections)


def _settings(settings: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in settings.items())


def _retry(retry: dict[str, Any]) -> str:
    text = (
        f"{retry['initial']:g}s x{retry['multiplier']:g} up to {retry['maximum']:g}s, "
        f"jitter {retry['jitter']:g} ({'Retry' if retry['source'] == 'route' else 'app retry_backoff'})"
    )
    if retry["transient"]:
        text += f"; transient: {', '.join(retry['transient'])}"
    return text


def _dead_letter(queue: dict[str, Any] | None) -> str:
    if queue is None:
        return "none: retried until it succeeds"
    after = f"after {queue['max_retries']} {'retry' if queue['max_retries'] == 1 else 'retries'}"
    text = f"{queue['topic']} on {queue['cluster']} {after}" if queue["topic"] else f"skipped {after}"
    notes = [
        *(["each message counted alone"] if queue["independent"] else []),
        *([f"at once on {', '.join(queue['dispatch_on'])}"] if queue["dispatch_on"] else []),
        *(["decode errors retried"] if queue["retry_decode_errors"] else ["decode errors at once"]),
        *(["declared"] if queue["declared"] else []),
    ]
    return f"{text} ({'; '.join(notes)})"


def _virtual_partitions(topics: list[dict[str, Any]]) -> list[str]:
    """The routes whose batches split into virtual partitions, if any do."""
    rows = [
        [t["topic"], t["cluster"], str(v["concurrency"]), v["key"] or "the message key (keyless: by offset)"]
        for t in topics
        if (v := t["virtual_partitions"]) is not None
    ]
    if not rows:
        return []
    table = render_table(["TOPIC", "CLUSTER", "AT ONCE", "SPLIT BY"], rows)
    return ["", "Virtual partitions (each partition's batch split by key, handled concurrently)", table]
