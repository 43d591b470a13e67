"""The contract of a cluster's settings: names, keys, values and the clusters routes name.

``config`` holds the tables (which keys exist, their dotted aliases, the keys the framework
owns, ``RULES``: what each value takes) and splits what passed; this module checks a
``kafka={...}`` mapping against them, key by key, and holds the rules' building blocks.
Every refusal names where the settings were given, the key as the user wrote it and
what is allowed, or the closest key to a mistyped one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiostream_kafka.contracts.checks import did_you_mean, is_text, is_whole_number
from aiostream_kafka.errors import ConfigError, UnknownClusterError

#: What a cluster may be called: it shows in metrics labels, URLs and ``app.producers[...]``.
CLUSTER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")

_BOOLEANS = {"true": True, "false": False}
_WHOLE_NUMBER = re.compile(r"\s*-?\d+\s*")


class Refused(ValueError):
    """A value a rule does not take; the contract says where and what is allowed."""


@dataclass(frozen=True)
class Rule:
    """What one setting takes: ``convert`` returns what aiokafka gets, or raises ``Refused``."""

    allowed: str
    convert: Callable[[Any], Any]


def integer(minimum: int, unit: str, *, none: bool = False) -> Rule:
    """Whole numbers from ``minimum`` up, also as the strings a ``.properties`` file holds."""

    def convert(value: Any) -> int | None:
        if value is None and none:
            return None
        if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
            value = int(value)
        if not is_whole_number(value, minimum):
            raise Refused
        return value

    return Rule(f"a whole number of {unit} >= {minimum}{' or None' if none else ''}", convert)


def milliseconds(minimum: int, *, none: bool = False) -> Rule:
    return integer(minimum, "milliseconds", none=none)


def byte_count(minimum: int) -> Rule:
    return integer(minimum, "bytes")


def _boolean(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    if not isinstance(value, bool):
        raise Refused
    return value


def choice(options: Sequence[str], case: Callable[[str], str] = str.lower) -> Rule:
    """One of ``options``, in any case and with spaces around (as ``case`` folds it)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or case(value.strip()) not in options:
            raise Refused
        return case(value.strip())

    return Rule(f"one of {', '.join(options)}", convert)


def _text(value: Any) -> str:
    if not is_text(value):
        raise Refused
    return value


def instance_of(kind: type, allowed: str) -> Rule:
    """An object of ``kind`` (a token provider, say)."""

    def convert(value: Any) -> Any:
        if not isinstance(value, kind):
            raise Refused
        return value

    return Rule(allowed, convert)


def function(allowed: str) -> Rule:
    """Something callable (a partitioner, say)."""

    def convert(value: Any) -> Any:
        if not callable(value):
            raise Refused
        return value

    return Rule(allowed, convert)


TEXT = Rule("a non-empty string", _text)
BOOLEAN = Rule("True or False (or 'true' / 'false')", _boolean)


@dataclass(frozen=True)
class SettingsContract:
    """What a ``kafka={...}`` mapping may hold, from ``config``'s tables."""

    valid: frozenset[str]
    aliases: Mapping[str, str]  # dotted librdkafka/Java names whose aiokafka name is not dots made _
    owned: Mapping[str, str]  # the framework's keys, with what to do instead
    unsupported: Mapping[str, str]  # Java-only keys, with what a Python client needs instead
    rules: Mapping[str, Rule]
    secrets: frozenset[str]
    #: Keys that stand for others (``sasl.jaas.config`` for a username and a password).
    expanded: Mapping[str, Callable[[Any, str], Mapping[str, Any]]]

    def canonical(self, key: str) -> str:
        """aiokafka's name for ``key``, however it was written."""
        if key in self.aliases:
            return self.aliases[key]
        return key.replace(".", "_") if "." in key else key

    def checked(self, raw: object, where: str) -> dict[str, Any]:
        """Every setting of ``raw`` by aiokafka's name, its value as its rule converts it."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: Kafka settings must be a mapping, not {type(raw).__name__}")
        found: dict[str, Any] = {}
        seen: dict[str, str] = {}  # aiokafka's name -> the user's
        for original, value in raw.items():
            if not isinstance(original, str):
                raise ConfigError(f"{where}: setting names must be strings, not {original!r}")
            key = self.canonical(original)
            if key in self.unsupported:
                raise ConfigError(f"{where}: {original!r} is not supported: {self.unsupported[key]}")
            if key in self.expanded:
                for inner, inner_value in self.expanded[key](value, where).items():
                    if inner in seen:
                        raise ConfigError(f"{where}: {original!r} and {seen[inner]!r} both set {inner}")
                    seen[inner] = original
                    found[inner] = inner_value
                continue
            if key in self.owned:
                raise ConfigError(f"{where}: {original!r} cannot be set here: {self.owned[key]}")
            if key not in self.valid:
                raise ConfigError(f"{where}: unknown Kafka setting {original!r}{self._suggestion(original)}")
            if key in seen:
                raise ConfigError(f"{where}: {original!r} and {seen[key]!r} are the same setting; keep one")
            seen[key] = original
            found[key] = self._value(key, original, value, where)
        return found

    def _value(self, key: str, original: str, value: Any, where: str) -> Any:
        """``value`` as its rule converts it; refused: the place, the key as written, what is allowed."""
        rule = self.rules.get(key)
        if rule is None:
            return value
        try:
            return rule.convert(value)
        except Refused:
            # A secret of the wrong type is a secret all the same: say its type only.
            shown = f"a value of type {type(value).__name__}" if key in self.secrets else repr(value)
            raise ConfigError(f"{where}: {original} must be {rule.allowed}, not {shown}") from None

    def _suggestion(self, key: str) -> str:
        candidates = self.valid | set(self.aliases)
        hint = did_you_mean(key, candidates)
        if not hint and "." in key:
            hint = did_you_mean(key.replace(".", "_"), candidates)
        return hint


def check_cluster_name(name: Any, where: str) -> str:
    """``name`` if it is a name a cluster can have; else a ``ConfigError`` saying which are."""
    if not isinstance(name, str) or not CLUSTER_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: cluster name {name!r} is not allowed; use 1 to 64 letters, digits, '.', '_' or '-'"
        )
    return name


def checked_servers(value: Any, where: str) -> tuple[str, ...]:
    """The servers as ``host:port`` (9092 when no port is given), lower case, sorted, once each."""
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


def may_be_inline(name: object) -> bool:
    """Whether ``name`` could be an inline cluster's (a route's ``kafka={...}`` that matches no
    named cluster is named after its servers, so it always has a ``:``): only the topology
    knows those, so only it can refuse such a name."""
    return isinstance(name, str) and ":" in name


def check_known_cluster(name: object, clusters: Collection[str] | None, where: str) -> None:
    """Refuse, when it is declared, a cluster ``name`` the app has not and cannot have.

    ``clusters``: the app's clusters (``App(kafka=..., clusters=...)``, fixed at construction),
    or None where they are not known, as for ``Routes()`` on its own: then the topology
    refuses it when it is built, as it does names that may be inline clusters'.
    """
    if name is None or clusters is None or name in clusters or may_be_inline(name):
        return
    raise UnknownClusterError.named(name, clusters, where)


def check_transactional(producer: Mapping[str, Any], where: str) -> None:
    """A transactional producer is idempotent and waits for every replica (aiokafka would turn
    idempotence on silently, and refuse other acks only when the producer is made)."""
    if "transactional_id" not in producer:
        return
    if producer.get("enable_idempotence") is False:
        raise ConfigError(
            f"{where}: transactional_id needs an idempotent producer, but enable_idempotence is "
            f"False; drop enable_idempotence=False"
        )
    acks = producer.get("acks", "all")
    if acks != "all":
        raise ConfigError(
            f"{where}: transactional_id needs acks='all' (every in-sync replica has each record "
            f"before the transaction commits), not acks={acks!r}; drop acks or set it to 'all'"
        )
