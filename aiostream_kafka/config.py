"""Kafka settings: key normalisation, validation, and what identifies a cluster.

Users write settings the way they know them: aiokafka's keyword names
(``bootstrap_servers``) or the dotted librdkafka/Java names they copy from Karafka or a
``.properties`` file (``bootstrap.servers``, ``request.required.acks``). Both map to
aiokafka's names here, once, at build time; an unknown key is an error that names where
it was found and the closest valid key. The tables are here; ``contracts.cluster`` checks
settings against them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from aiostream_kafka import deprecation, security
from aiostream_kafka.contracts.cluster import (
    BOOLEAN,
    TEXT,
    Refused,
    Rule,
    SettingsContract,
    byte_count,
    check_transactional,
    checked_servers,
    choice,
    function,
    instance_of,
    milliseconds,
)
from aiostream_kafka.contracts.security import check_security, parse_jaas
from aiostream_kafka.instrumentation.redaction import remember
from aiostream_kafka.security import MECHANISMS, PROTOCOLS, SASL_KEYS, SECRET_KEYS, TLS_KEYS

#: Settings that say which cluster this is and who we are on it: two settings that agree
#: on these are the same cluster.
IDENTITY_KEYS = frozenset({"bootstrap_servers", "security_protocol", *TLS_KEYS, *SASL_KEYS})

#: Identity keys that are ours, not aiokafka's: they become its ``ssl_context``.
TLS_SOURCE_KEYS = frozenset(
    {"ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_check_hostname"}
)

#: Client settings that consumers and producers both take but that do not identify a cluster.
CLIENT_KEYS = frozenset(
    {
        "client_id",
        "api_version",
        "connections_max_idle_ms",
        "metadata_max_age_ms",
        "request_timeout_ms",
        "retry_backoff_ms",
    }
)

CONSUMER_KEYS = frozenset(
    {
        "group_id",
        "auto_offset_reset",
        "check_crcs",
        "client_rack",
        "consumer_timeout_ms",
        "exclude_internal_topics",
        "fetch_max_bytes",
        "fetch_max_wait_ms",
        "fetch_min_bytes",
        "heartbeat_interval_ms",
        "isolation_level",
        "max_partition_fetch_bytes",
        "max_poll_interval_ms",
        "partition_assignment_strategy",
        "rebalance_timeout_ms",
        "session_timeout_ms",
        "group_instance_id",
    }
)

PRODUCER_KEYS = frozenset(
    {
        "acks",
        "compression_type",
        "enable_idempotence",
        "linger_ms",
        "max_batch_size",
        "max_request_size",
        "partitioner",
        "transaction_timeout_ms",
        "transactional_id",
    }
)

#: aiokafka settings the framework owns, with what to do instead.
OWNED_KEYS = {
    "enable_auto_commit": "the framework commits after each batch succeeds",
    "auto_commit_interval_ms": "the framework commits after each batch succeeds",
    "max_poll_records": "set max_poll_records (or max_messages) on the route",
    "key_deserializer": "routes decode payloads; set payload=, format= or decoder= on the route",
    "value_deserializer": "routes decode payloads; set payload=, format= or decoder= on the route",
    "key_serializer": "producers encode with msgspec; pass bytes to send them as they are",
    "value_serializer": "producers encode with msgspec; pass bytes to send them as they are",
    "loop": "the running event loop is used",
}

VALID_KEYS = IDENTITY_KEYS | CLIENT_KEYS | CONSUMER_KEYS | PRODUCER_KEYS

#: Dotted librdkafka/Java names whose aiokafka name is not just the dots made underscores.
DOTTED_ALIASES = {
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
    "ssl.endpoint.identification.algorithm": "ssl_check_hostname",
    "request.required.acks": "acks",
    "compression.codec": "compression_type",
    "queue.buffering.max.ms": "linger_ms",
    "batch.size": "max_batch_size",
    "fetch.wait.max.ms": "fetch_max_wait_ms",
    "topic.metadata.refresh.interval.ms": "metadata_max_age_ms",
    "socket.timeout.ms": "request_timeout_ms",
}

#: What a producer can compress with (all of them decode out of the box, through cramjam).
COMPRESSION_TYPES = ("gzip", "snappy", "lz4", "zstd")

#: aiokafka's partition assignors by the names librdkafka and Java users know them by.
ASSIGNORS: dict[str, type[AbstractPartitionAssignor]] = {
    assignor.name: assignor
    for assignor in (RangePartitionAssignor, RoundRobinPartitionAssignor, StickyPartitionAssignor)
}


def _acks(value: Any) -> int | str:
    if isinstance(value, bool):
        raise Refused
    if value in (-1, "-1", "all"):
        return "all"
    if value in (0, 1, "0", "1"):
        return int(value)
    raise Refused


def _compression(value: Any) -> str | None:
    lowered = value.lower() if isinstance(value, str) else value
    if lowered in (None, "none"):
        return None
    if lowered not in COMPRESSION_TYPES:
        raise Refused
    return str(lowered)


def _hostname_check(value: Any) -> bool:
    """``ssl.endpoint.identification.algorithm`` (``https`` or empty) or a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("https", "", "none"):
        return value.lower() == "https"
    raise Refused


def _assignors(value: Any) -> tuple[type[AbstractPartitionAssignor], ...]:
    """Names (``"range"``, ``"roundrobin,sticky"``) or aiokafka assignor classes, in order."""
    if isinstance(value, str):
        value = value.split(",")
    items = value if isinstance(value, (list, tuple)) else (value,)
    found = []
    for item in items:
        if isinstance(item, str) and item.strip().lower() in ASSIGNORS:
            found.append(ASSIGNORS[item.strip().lower()])
        elif isinstance(item, type) and issubclass(item, AbstractPartitionAssignor):
            found.append(item)
        else:
            raise Refused
    if not found:
        raise Refused
    return tuple(found)


#: Every setting's type and range, checked when it is declared (not when aiokafka first uses
#: it, which may be at stop, or in a crash loop). Keys without a rule are checked elsewhere:
#: bootstrap_servers by ``contracts.cluster.checked_servers``, TLS files and ssl_context by
#: ``contracts.security``.
RULES: dict[str, Rule] = {
    "security_protocol": choice(PROTOCOLS, str.upper),
    "sasl_mechanism": choice(MECHANISMS, str.upper),
    "sasl_plain_username": TEXT,
    "sasl_plain_password": TEXT,
    "sasl_kerberos_service_name": TEXT,
    "sasl_kerberos_domain_name": TEXT,
    "sasl_oauth_token_provider": instance_of(AbstractTokenProvider, "an aiokafka.abc.AbstractTokenProvider"),
    "ssl_password": TEXT,
    "ssl_check_hostname": Rule("'https' (on) or '' (off), or True / False", _hostname_check),
    "client_id": TEXT,
    "api_version": TEXT,
    "connections_max_idle_ms": milliseconds(1, none=True),
    "metadata_max_age_ms": milliseconds(1),
    "request_timeout_ms": milliseconds(1),
    "retry_backoff_ms": milliseconds(0),
    "group_id": TEXT,
    "auto_offset_reset": choice(("earliest", "latest")),  # route.INITIAL_OFFSETS (import cycle)
    "check_crcs": BOOLEAN,
    "client_rack": TEXT,
    "consumer_timeout_ms": milliseconds(1),
    "exclude_internal_topics": BOOLEAN,
    "fetch_max_bytes": byte_count(1),
    "fetch_max_wait_ms": milliseconds(0),
    "fetch_min_bytes": byte_count(0),
    "heartbeat_interval_ms": milliseconds(1),
    "isolation_level": choice(("read_committed", "read_uncommitted")),  # route.ISOLATION_LEVELS
    "max_partition_fetch_bytes": byte_count(1),
    "max_poll_interval_ms": milliseconds(1),
    "partition_assignment_strategy": Rule(
        f"assignor names ({', '.join(ASSIGNORS)}) or aiokafka assignor classes", _assignors
    ),
    "rebalance_timeout_ms": milliseconds(1, none=True),
    "session_timeout_ms": milliseconds(1),
    "group_instance_id": TEXT,
    "acks": Rule("0, 1 or 'all' (or -1)", _acks),
    "compression_type": Rule(f"one of {', '.join(COMPRESSION_TYPES)} or none", _compression),
    "enable_idempotence": BOOLEAN,
    "linger_ms": milliseconds(0),
    "max_batch_size": byte_count(1),
    "max_request_size": byte_count(1),
    "partitioner": function("a callable (key, all_partitions, available_partitions) -> partition"),
    "transaction_timeout_ms": milliseconds(1),
    "transactional_id": TEXT,
}


#: How a ``kafka={...}`` mapping is checked against the tables above.
SETTINGS_CONTRACT = SettingsContract(
    valid=VALID_KEYS,
    aliases=DOTTED_ALIASES,
    owned=OWNED_KEYS,
    unsupported=security.UNSUPPORTED,
    rules=RULES,
    secrets=SECRET_KEYS,
    expanded={"sasl_jaas_config": parse_jaas},
)


def frozen_items(settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-free form of settings; objects (an SSLContext, say) count by identity."""
    plain = (str, int, float, bool, tuple, type(None))
    return tuple(sorted((k, v if isinstance(v, plain) else id(v)) for k, v in settings.items()))


@dataclass(frozen=True)
class KafkaSettings:
    """One validated ``kafka={...}`` mapping, split by who uses each key."""

    identity: Mapping[str, Any]
    client: Mapping[str, Any] = field(default_factory=dict)
    consumer: Mapping[str, Any] = field(default_factory=dict)
    producer: Mapping[str, Any] = field(default_factory=dict)
    #: Built from the ``ssl_*`` files once, at parse time (not part of the identity).
    tls: ssl.SSLContext | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, where: str) -> KafkaSettings:
        """Validate and normalise user settings; ``where`` names them in errors."""
        parts: dict[str, dict[str, Any]] = {"identity": {}, "client": {}, "consumer": {}, "producer": {}}
        for key, value in SETTINGS_CONTRACT.checked(raw, where).items():
            part = (
                "identity"
                if key in IDENTITY_KEYS
                else "client"
                if key in CLIENT_KEYS
                else "consumer"
                if key in CONSUMER_KEYS
                else "producer"
            )
            parts[part][key] = value
        identity = parts["identity"]
        identity["bootstrap_servers"] = checked_servers(identity.get("bootstrap_servers"), where)
        identity.setdefault("security_protocol", "PLAINTEXT")
        check_security(identity, where)
        check_transactional(parts["producer"], where)
        tls = security.context_for(identity, where)
        settings = cls(**parts, tls=tls)
        remember(settings, settings.secrets())  # masked in every log line from now on, not at start
        return settings

    @property
    def bootstrap_servers(self) -> tuple[str, ...]:
        servers: tuple[str, ...] = self.identity["bootstrap_servers"]
        return servers

    def identity_key(self) -> tuple[tuple[str, Any], ...]:
        """What makes two settings the same cluster."""
        return frozen_items(self.identity)

    def connection_kwargs(self) -> dict[str, Any]:
        """aiokafka keyword arguments that connect to this cluster."""
        kwargs = {k: v for k, v in self.identity.items() if k not in TLS_SOURCE_KEYS}
        kwargs["bootstrap_servers"] = list(self.bootstrap_servers)
        if self.tls is not None:
            kwargs["ssl_context"] = self.tls
        return kwargs

    def producer_kwargs(self) -> dict[str, Any]:
        return {**self.connection_kwargs(), **self.client, **self.producer}

    def redacted(self) -> dict[str, Any]:
        """Every setting, secrets masked: safe to print or log."""
        merged = {**self.identity, **self.client, **self.consumer, **self.producer}
        merged["bootstrap_servers"] = ",".join(self.bootstrap_servers)
        return {key: "***" if key in SECRET_KEYS else value for key, value in sorted(merged.items())}

    def secrets(self) -> list[str]:
        """The secret values in these settings (to mask wherever text leaves the app)."""
        return [v for k, v in self.identity.items() if k in SECRET_KEYS and isinstance(v, str) and v]

    def __repr__(self) -> str:
        return f"KafkaSettings({self.redacted()!r})"


@dataclass(frozen=True)
class Cluster:
    """A Kafka cluster the app talks to: a name and how to connect."""

    name: str
    settings: KafkaSettings
    inline: bool = False

    @property
    def servers(self) -> str:
        """The bootstrap servers joined with commas, for messages and pages."""
        return ",".join(self.settings.bootstrap_servers)

    @property
    def bootstrap_servers(self) -> str:
        deprecation.warn(
            "Cluster.bootstrap_servers",
            "Cluster.servers (text) or Cluster.settings.bootstrap_servers (a tuple)",
        )
        return self.servers
