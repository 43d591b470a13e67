"""The contract of a monitor subscription: an event that exists, or a listener whose every
``on_<event>`` method matches one (a typo would otherwise never be called, silently)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from aiostream_kafka.contracts.checks import did_you_mean
from aiostream_kafka.errors import ConfigError


def check_event_name(name: object, events: Collection[str], *, everything: str) -> str:
    """``name``, if it is one of ``events`` or ``everything`` (``"*"``)."""
    if not isinstance(name, str):
        raise ConfigError(f"subscribe(name, subscriber): the name must be a str, not {name!r}")
    if name != everything and name not in events:
        raise ConfigError(f"unknown monitor event {name!r}{did_you_mean(name, events)}")
    return name


def check_listener(listener: object, methods: Sequence[str], method_names: Collection[str]) -> None:
    """``methods``: the listener's ``on_*`` methods; ``method_names``: one per event."""
    kind = type(listener).__name__
    unknown = [method for method in methods if method not in method_names]
    if unknown:
        hint = did_you_mean(unknown[0], method_names)
        raise ConfigError(f"{kind}.{unknown[0]} matches no monitor event{hint}")
    if not methods:
        raise ConfigError(f"{kind} has no on_<event> methods (e.g. on_batch_processed)")
