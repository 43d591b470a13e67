"""The contract of ``VirtualPartitions``: how many run at once, and what splits a batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiostream_kafka.contracts.checks import callable_name, is_async_function, is_whole_number
from aiostream_kafka.errors import ConfigError

if TYPE_CHECKING:  # the class calls this from its __post_init__
    from aiostream_kafka.processing.virtual_partitions import VirtualPartitions


def check_virtual_partitions(spec: VirtualPartitions) -> None:
    if not is_whole_number(spec.concurrency, 1):
        raise ConfigError(
            f"VirtualPartitions(concurrency={spec.concurrency!r}): how many virtual partitions of a "
            f"batch run at once, a whole number >= 1"
        )
    key = spec.key
    if key is None:
        return
    if not callable(key):
        raise ConfigError(
            f"VirtualPartitions(key={key!r}): a function of a Message returning something hashable "
            f"(messages with equal keys keep their order), or None for the message key"
        )
    if is_async_function(key):
        raise ConfigError(
            f"VirtualPartitions(key={callable_name(key)}): the key function is called for every "
            f"message before the handlers run; make it a plain def, not an async def"
        )
