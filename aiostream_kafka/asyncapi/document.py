"""An app as an AsyncAPI 3.0 document: its clusters, what it consumes and what it sends.

Read from the app's declarations alone (nothing connects): every cluster is a server (the
primary tagged ``primary``); every active route a channel on its cluster and a receive
operation in its consumer group; each dead-letter queue, job topic, ``app.produces``
topic and Web UI report topic a channel with a send operation. A topic is a channel per
cluster it is on: one name on two clusters is two channels, each tied to its server.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiostream_kafka.__about__ import __version__
from aiostream_kafka.app import App
from aiostream_kafka.asyncapi import schemas
from aiostream_kafka.asyncapi.servers import server
from aiostream_kafka.contracts.checks import callable_name
from aiostream_kafka.errors import UnknownClusterError
from aiostream_kafka.jobs import Job, JobEnvelope
from aiostream_kafka.jobs.schedule import ScheduleRecord
from aiostream_kafka.routing.declared import DeclaredTopic
from aiostream_kafka.routing.route import Route
from aiostream_kafka.routing.topology import RoutedTopic, SubscriptionGroup, Topology
from aiostream_kafka.web.reports import ErrorReport, ProcessReport

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CONTENT_TYPES = {"json": "application/json", "msgpack": "application/msgpack"}
RAW_CONTENT_TYPE = "application/octet-stream"

#: What ``runtime/failures.py`` adds to a dead-lettered message's own headers.
DEAD_LETTER_HEADERS: dict[str, dict[str, Any]] = {
    "source_topic": {"type": "string"},
    "source_partition": {"type": "string", "description": "a whole number, as text"},
    "source_offset": {"type": "string", "description": "a whole number, as text"},
    "source_cluster": {"type": "string", "description": "the name of the source topic's cluster"},
    "source_consumer_group": {"type": "string"},
    "source_key": {"type": ["string", "null"], "description": "the message's key, as it was"},
    "error_type": {"type": "string", "description": "module.qualname of the exception"},
    "error_message": {"type": "string", "description": "at most 4096 bytes of it"},
    "attempts": {"type": "string", "description": "how many times the handler failed on it"},
    "decode_error": {"type": "string", "enum": ["true", "false"]},
}

#: Kafka topic settings the Kafka channel binding types, and the type it wants.
_INTEGER_SETTINGS = ("retention.ms", "retention.bytes", "delete.retention.ms", "max.message.bytes")
_CLEANUP_POLICIES = ("compact", "delete")


def asyncapi_document(app: App, *, version: str = "0.0.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``app``, as plain data (``json.dumps`` it, or ``to_yaml``).

    ``version`` is the API's version (AsyncAPI's ``info.version``); the app has none of its own.
    """
    return _Document(app).build(version)


@dataclass
class _Channel:
    id: str
    topic: str
    cluster: str
    roles: list[str] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: dict[str, list[str]] = field(default_factory=dict)  # message $ref -> why the app sends it


class _Ids:
    """Identifiers AsyncAPI's tools accept (letters, digits, ``_``, ``-``), unique per kind."""

    def __init__(self) -> None:
        self._taken: dict[str, set[str]] = {}

    def take(self, kind: str, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", wanted).strip("-") or kind
        taken = self._taken.setdefault(kind, set())
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        return name


class _Document:
    """One build: channels gather what is received and sent on them before any is written,
    since a topic can be consumed, dead-lettered to and produced to by one app."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.topology: Topology = app.topology
        self.ids = _Ids()
        self.servers: dict[str, str] = {}  # cluster name -> server id
        self.channels: dict[tuple[str, str], _Channel] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.security_schemes: dict[str, dict[str, Any]] = {}
        self.jobs = list(app.jobs)
        self._types: list[Any] = []
        self._schemas: list[dict[str, Any]] = []
        self._components: dict[str, dict[str, Any]] = {}

    def build(self, version: str) -> dict[str, Any]:
        self._describe_payloads()
        servers = {}
        for cluster in self.topology.clusters.values():
            sid = self.ids.take("server", cluster.name)
            self.servers[cluster.name] = sid
            servers[sid] = server(cluster, self.topology, self.security_schemes)
        for group in self.topology.subscription_groups:
            for topic in group.topics:
                self._route(group, topic)
        for job in self.jobs:
            self._sent(job.cluster, job.topic, "job", self._job_message(job), f"job {job.name}.enqueue()")
        for produced in self.app.produced:
            message = self._payload_message(produced.payload, produced.format, produced.description)
            self._sent(
                produced.cluster, produced.name, "produced", message, f"app.produces({produced.name!r})"
            )
        self._schedule_records()
        self._web_reports()
        self.operations.update(self._send_operations())
        document: dict[str, Any] = {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {
                "title": self.app.name,
                "version": version,
                "description": (
                    f"What the aiostream-kafka app {self.app.name!r} consumes and sends, on "
                    f"{len(servers)} Kafka cluster(s); its primary is {self.topology.primary.name!r}. "
                    f"Made by aiostream-kafka {__version__} from the app's declarations."
                ),
            },
            "servers": servers,
            "channels": {c.id: self._channel_object(c) for c in self.channels.values()},
            "operations": self.operations,
        }
        components: dict[str, Any] = {}
        if self._components:
            components["schemas"] = self._components
        if self.security_schemes:
            components["securitySchemes"] = self.security_schemes
        if components:
            document["components"] = components
        return document

    # --- payload schemas, all in one msgspec call ------------------------------------------

    def _describe_payloads(self) -> None:
        declared: list[tuple[Any, str]] = [(JobEnvelope, "app.jobs")]
        if self.app.jobs.scheduled():
            declared.append((ScheduleRecord, "app.jobs: schedules"))
        for topic in self.topology.topics:
            if topic.route.decoder is None and topic.route.payload is not bytes:
                declared.append((topic.route.payload, f"{topic.route.label}: payload"))
        for produced in self.app.produced:
            if produced.payload is not bytes:
                declared.append((produced.payload, f"app.produces({produced.name!r}): payload"))
        for job in self.jobs:
            declared += [(kind, f"job {job.name!r}: {name}") for name, kind in _parameter_types(job).items()]
        if self.app.web.enabled:
            declared += [(ProcessReport, "app.web"), (ErrorReport, "app.web")]
        unique = _unique(declared)
        self._types = [kind for kind, _ in unique]
        self._schemas, self._components = schemas.describe(self._types, [where for _, where in unique])

    def _schema(self, payload: Any) -> dict[str, Any]:
        return self._schemas[next(i for i, t in enumerate(self._types) if t == payload)]

    def _payload_message(self, payload: Any, format: str, description: str | None = None) -> dict[str, Any]:
        if payload is bytes:
            message = {"name": "raw", "contentType": RAW_CONTENT_TYPE, "payload": schemas.BINARY}
        else:
            message = {
                "name": _type_name(payload),
                "contentType": CONTENT_TYPES[format],
                "payload": self._schema(payload),
            }
        if description:
            message["description"] = description
        return message

    def _route_message(self, route: Route) -> dict[str, Any]:
        if route.decoder is not None:
            decoder = callable_name(route.decoder)
            return {
                "name": f"decoded by {decoder}",
                "description": f"decoded by {decoder}; no schema declared",
            }
        return self._payload_message(route.payload, route.format)

    def _job_message(self, job: Job) -> dict[str, Any]:
        parameters = _parameter_types(job)
        arguments = {
            "type": "object",
            "properties": {name: self._schema(kind) for name, kind in parameters.items()},
            "required": [
                name
                for name, p in job.signature.parameters.items()
                if p.default is p.empty and name in parameters
            ],
            "additionalProperties": False,
        }
        envelope = {
            "type": "object",
            "title": f"job {job.name}",
            "properties": {
                "name": {"const": job.name},
                "id": {"type": "string"},
                "args": arguments,
                "enqueued_at": {"type": "number", "description": "epoch seconds"},
                "run_at": {"type": ["number", "null"], "description": "not before then (epoch seconds)"},
            },
            "required": ["name", "id", "args", "enqueued_at"],
        }
        return {
            "name": job.name,
            "title": f"job {job.name}",
            "summary": f"a run of {callable_name(job.function)}",
            "contentType": CONTENT_TYPES["json"],
            "headers": {
                "type": "object",
                "properties": {"job": {"const": job.name}},
                "required": ["job"],
            },
            "payload": envelope,
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": "the job's id"},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }

    # --- channels and operations -----------------------------------------------------------

    def _channel(self, cluster: str, topic: str, role: str) -> _Channel:
        if cluster not in self.topology.clusters:
            raise UnknownClusterError.named(cluster, self.topology.clusters, f"topic {topic!r}")
        channel = self.channels.get((cluster, topic))
        if channel is None:
            cid = self.ids.take("channel", f"{self.servers[cluster]}_{topic}")
            channel = self.channels[(cluster, topic)] = _Channel(cid, topic, cluster)
        if role not in channel.roles:
            channel.roles.append(role)
        return channel

    def _message_ref(self, channel: _Channel, message: dict[str, Any]) -> dict[str, str]:
        mid = next((mid for mid, known in channel.messages.items() if known == message), None)
        if mid is None:
            mid = self.ids.take(f"message {channel.id}", message["name"])
            channel.messages[mid] = message
        return {"$ref": f"#/channels/{channel.id}/messages/{mid}"}

    def _route(self, group: SubscriptionGroup, topic: RoutedTopic) -> None:
        route = topic.route
        jobs = self._jobs_route(route)
        channel = self._channel(topic.cluster, topic.name, "job" if jobs is not None else "routed")
        if jobs:
            messages = [self._message_ref(channel, self._job_message(job)) for job in jobs]
        else:
            messages = [self._message_ref(channel, self._route_message(route))]
        shared = any(  # the topic is consumed in other consumer groups too: say which this is
            g is not group and topic.name in g.topic_names and g.cluster == topic.cluster
            for g in self.topology.subscription_groups
        )
        oid = self.ids.take("operation", f"receive_{channel.id}" + (f"_{group.group_id}" if shared else ""))
        handler = route.handler_name if jobs is None else "app.jobs (runs the jobs below)"
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel.id}"},
            "messages": messages,
            "summary": f"handled by {handler}",
            "description": (
                f"{handler} consumes {topic.name!r} on cluster {topic.cluster!r} in consumer group "
                f"{group.group_id!r} (subscription group {group.name!r}), in batches of up to "
                f"{group.max_messages}."
            ),
            "bindings": {
                "kafka": {
                    "groupId": {"type": "string", "enum": [group.group_id]},
                    "clientId": {"type": "string", "enum": [self.app.name]},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        self.operations[oid] = operation
        queue = route.dead_letter_queue
        if queue is not None and queue.topic is not None:
            self._sent(
                topic.dead_letter_cluster,
                queue.topic,
                "dead-letter queue",
                self._dead_letter_message(),
                f"dead-letters of {topic.name!r} on {topic.cluster!r}",
            )

    def _jobs_route(self, route: Route) -> list[Job] | None:
        """The jobs a route runs, if it is ``app.jobs.consume``'s (None if it is not)."""
        if getattr(route.handler, "__self__", None) is not self.app.jobs:
            return None
        return [job for job in self.jobs if job.topic == route.topic]

    def _dead_letter_message(self) -> dict[str, Any]:
        return {
            "name": "dead-letter",
            "title": "a message its handler failed on",
            "description": (
                "The source message's value and headers, unchanged (the value may not match the "
                "source's schema: one that does not decode comes here at once), with where it "
                "came from and why it failed in the headers below."
            ),
            "contentType": RAW_CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": DEAD_LETTER_HEADERS,
                "required": [name for name in DEAD_LETTER_HEADERS if name != "source_key"],
            },
            "payload": schemas.BINARY,
        }

    def _schedule_records(self) -> None:
        """Each cluster with recurring jobs: its schedule topic gets each tick's record."""
        for cluster in sorted({job.cluster for job in self.app.jobs.scheduled()}):
            message = self._payload_message(
                ScheduleRecord, "json", "a recurring job's last tick, keyed by the job's name"
            )
            why = "the recurring jobs' scheduler (each tick's record, in the transaction of its run)"
            self._sent(cluster, self.app.jobs.schedule_topic, "schedule", message, why)

    def _web_reports(self) -> None:
        web = self.app.web
        if not web.enabled:
            return
        for topic, report in ((web.reports_topic, ProcessReport), (web.errors_topic, ErrorReport)):
            message = self._payload_message(report, "json")
            self._sent(
                web.cluster, topic, "Web UI reports", message, "app.web.enable() (status for the Web UI)"
            )

    def _sent(self, cluster: str, topic: str, role: str, message: dict[str, Any], why: str) -> None:
        channel = self._channel(cluster, topic, role)
        ref = self._message_ref(channel, message)
        reasons = channel.sent.setdefault(ref["$ref"], [])
        if why not in reasons:
            reasons.append(why)

    def _send_operations(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for channel in self.channels.values():
            if not channel.sent:
                continue
            reasons = [why for whys in channel.sent.values() for why in whys]
            yield (
                self.ids.take("operation", f"send_{channel.id}"),
                {
                    "action": "send",
                    "channel": {"$ref": f"#/channels/{channel.id}"},
                    "messages": [{"$ref": ref} for ref in channel.sent],
                    "summary": "; ".join(reasons),
                },
            )

    def _channel_object(self, channel: _Channel) -> dict[str, Any]:
        document: dict[str, Any] = {
            "address": channel.topic,
            "title": f"{channel.topic} on {channel.cluster}",
            "summary": f"{' and '.join(channel.roles)} topic {channel.topic!r} on {channel.cluster!r}",
            "servers": [{"$ref": f"#/servers/{self.servers[channel.cluster]}"}],
            "messages": channel.messages,
        }
        declared = next(
            (d for d in self.topology.declared if (d.cluster, d.name) == (channel.cluster, channel.topic)),
            None,
        )
        if declared is not None:
            document["bindings"] = {"kafka": _topic_binding(declared)}
        return document


def _topic_binding(declared: DeclaredTopic) -> dict[str, Any]:
    """The Kafka channel binding of a declared topic: its partitions, replicas and settings."""
    settings: dict[str, Any] = {}
    for key, value in declared.config.wanted_settings().items():
        if key in _INTEGER_SETTINGS:
            try:
                settings[key] = int(value)
            except ValueError:  # not what Kafka takes either: topics migrate will say so
                continue
        elif key == "cleanup.policy":
            settings[key] = [p.strip() for p in value.split(",") if p.strip() in _CLEANUP_POLICIES]
        else:
            settings[key] = value
    binding: dict[str, Any] = {
        "partitions": declared.config.partitions,
        "replicas": declared.config.replication_factor,
    }
    if settings:
        binding["topicConfiguration"] = settings
    binding["bindingVersion"] = KAFKA_BINDING_VERSION
    return binding


def _parameter_types(job: Job) -> dict[str, Any]:
    """A job's parameters and their types (Any where unannotated), as ``enqueue`` checks them."""
    hints = typing.get_type_hints(job.function)
    return {name: hints.get(name, Any) for name in job.signature.parameters}


def _type_name(payload: Any) -> str:
    if isinstance(payload, type) and typing.get_origin(payload) is None:
        return payload.__qualname__
    return repr(payload).replace("typing.", "")


def _unique(declared: Iterable[tuple[Any, str]]) -> list[tuple[Any, str]]:
    """Each type once (types may be unhashable, as ``Annotated`` ones with a ``Meta``), as first declared."""
    unique: list[tuple[Any, str]] = []
    for kind, where in declared:
        if not any(kind == known for known, _ in unique):
            unique.append((kind, where))
    return unique
