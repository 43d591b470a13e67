"""The contract of ``app.testing(...)``: the in-memory harness's own settings."""

from __future__ import annotations

from aiostream_kafka.contracts.checks import is_seconds, is_whole_number
from aiostream_kafka.errors import ConfigError


def check_harness(*, partitions: object, attempts: object, timeout: object) -> None:
    for setting, value in (("partitions", partitions), ("attempts", attempts)):
        if not is_whole_number(value, 1):
            raise ConfigError(f"app.testing({setting}={value!r}): need a positive whole number")
    if not is_seconds(timeout):
        raise ConfigError(f"app.testing(timeout={timeout!r}): positive seconds")
