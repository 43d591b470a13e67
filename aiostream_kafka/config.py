"""Kafka settings: key normalisation, validation, and what identifies a cluster.

Users write settings the way they know them: aiokafka's keyword names
(``bootstrap_servers``) or the dotted librdkafka/Java names they copy from Karafka or a
``.properties`` file (``bootstrap.servers``, ``request.required.acks``). Both map to
aiokafka's names here, once, at build time; an unknown key is an error that names where
it was found and the closest valid key.
"""

from __future__ import annotations

import difflib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiostream_kafka import security
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.instrumentation.redaction import remember
from aiostream_kafka.security import SASL_KEYS, SECRET_KEYS, TLS_KEYS

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
    "max_poll_records": "set max_messages on the route",
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

_INT_SUFFIXES = ("_ms", "_bytes", "_size")
_BOOLEANS = {"true": True, "false": False}


def _canonical_key(key: str) -> str:
    if key in DOTTED_ALIASES:
        return DOTTED_ALIASES[key]
    return key.replace(".", "_") if "." in key else key


def _suggestion(key: str) -> str:
    candidates = sorted(VALID_KEYS | set(DOTTED_ALIASES))
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close and "." in key:
        close = difflib.get_close_matches(key.replace(".", "_"), candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _normalise_value(key: str, value: Any, where: str) -> Any:
    if isinstance(value, str) and value.lower() in _BOOLEANS and key in {"enable_idempotence", "check_crcs"}:
        return _BOOLEANS[value.lower()]
    if isinstance(value, str) and key.endswith(_INT_SUFFIXES) and value.strip().lstrip("-").isdigit():
        return int(value)
    if key == "acks":
        if isinstance(value, bool):
            raise ConfigError(f"{where}: acks must be 0, 1 or 'all' (or -1), not {value!r}")
        if value in (-1, "-1", "all"):
            return "all"
        if value in (0, 1, "0", "1"):
            return int(value)
        raise ConfigError(f"{where}: acks must be 0, 1 or 'all' (or -1), not {value!r}")
    if key == "compression_type":
        lowered = value.lower() if isinstance(value, str) else value
        if lowered in (None, "none"):
            return None
        if lowered not in COMPRESSION_TYPES:
            raise ConfigError(
                f"{where}: compression_type must be one of {', '.join(COMPRESSION_TYPES)} or none, "
                f"not {value!r}"
            )
        return lowered
    if key == "security_protocol" and isinstance(value, str):
        return value.upper()
    if key == "auto_offset_reset" and isinstance(value, str):
        return value.lower()
    if key == "sasl_mechanism" and isinstance(value, str):
        return value.upper()
    if key == "ssl_check_hostname":
        return security.check_hostname(value, where)
    return value


def _normalise_servers(value: Any, where: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value) if value is not None else []
    servers = []
    for item in items:
        server = str(item).strip().lower()
        if not server:
            continue
        host, _, port = server.rpartition(":")
        if not host:
            server = f"{server}:9092"
        elif not port.isdigit():
            raise ConfigError(f"{where}: bootstrap server {item!r} is not host:port")
        servers.append(server)
    if not servers:
        raise ConfigError(f"{where}: bootstrap_servers is required (for example '127.0.0.1:9092')")
    return tuple(sorted(set(servers)))


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
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: Kafka settings must be a mapping, not {type(raw).__name__}")
        parts: dict[str, dict[str, Any]] = {"identity": {}, "client": {}, "consumer": {}, "producer": {}}
        seen: dict[str, str] = {}
        for original, value in raw.items():
            if not isinstance(original, str):
                raise ConfigError(f"{where}: setting names must be strings, not {original!r}")
            key = _canonical_key(original)
            if key in security.UNSUPPORTED:
                raise ConfigError(f"{where}: {original!r} is not supported: {security.UNSUPPORTED[key]}")
            if key == "sasl_jaas_config":
                for jaas_key, jaas_value in security.parse_jaas(value, where).items():
                    if jaas_key in seen:
                        raise ConfigError(f"{where}: {original!r} and {seen[jaas_key]!r} both set {jaas_key}")
                    seen[jaas_key] = original
                    parts["identity"][jaas_key] = jaas_value
                continue
            if key in OWNED_KEYS:
                raise ConfigError(f"{where}: {original!r} cannot be set here: {OWNED_KEYS[key]}")
            if key not in VALID_KEYS:
                raise ConfigError(f"{where}: unknown Kafka setting {original!r}{_suggestion(original)}")
            if key in seen:
                raise ConfigError(f"{where}: {original!r} and {seen[key]!r} are the same setting; keep one")
            seen[key] = original
            value = _normalise_value(key, value, where)
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
        identity["bootstrap_servers"] = _normalise_servers(identity.get("bootstrap_servers"), where)
        identity.setdefault("security_protocol", "PLAINTEXT")
        tls = security.check(identity, where)
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
    def bootstrap_servers(self) -> str:
        return ",".join(self.settings.bootstrap_servers)
