"""The contracts of what a failure leads to: ``Retry``, ``DeadLetterQueue`` and ``Backoff``.

A backoff's numbers are checked alike wherever they are given (a route's ``Retry``, the
app's ``restart_backoff`` and ``retry_backoff``): a bad one would otherwise show only
when something fails, as a partition that never resumes or a restart loop that spins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiostream_kafka.contracts.checks import is_number, is_whole_number
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.topic_config import TopicConfig
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name

if TYPE_CHECKING:  # the classes call these from their __post_init__
    from aiostream_kafka.processing.dead_letter import DeadLetterQueue
    from aiostream_kafka.processing.retry import Retry
    from aiostream_kafka.runtime.backoff import Backoff


def check_exception_types(value: object, where: str) -> None:
    """Refuse anything but a tuple of exception classes (what ``except`` and isinstance take)."""
    if not isinstance(value, tuple) or not all(
        isinstance(item, type) and issubclass(item, Exception) for item in value
    ):
        raise ConfigError(f"{where}: a tuple of exception classes, e.g. (TimeoutError,)")


def check_delays(backoff: Retry | Backoff, shown: str) -> None:
    """The numbers of an exponential backoff, which ``Retry`` and ``Backoff`` name alike;
    ``shown`` is the whole declaration as errors show it."""
    kind = type(backoff).__name__
    initial, maximum, multiplier, jitter = (
        backoff.initial,
        backoff.maximum,
        backoff.multiplier,
        backoff.jitter,
    )
    if not (is_number(initial) and is_number(maximum) and is_number(multiplier) and is_number(jitter)):
        raise ConfigError(f"{shown}: every value must be a finite number")
    if not 0 <= jitter < 1:
        raise ConfigError(f"{kind}(jitter={jitter}): a fraction of the delay, 0 <= jitter < 1")
    if initial < 0 or maximum < initial:
        raise ConfigError(
            f"{kind}(initial={initial}, maximum={maximum}): need 0 <= initial <= maximum (seconds)"
        )
    if multiplier < 1:
        raise ConfigError(f"{kind}(multiplier={multiplier}): the multiplier must be at least 1")


def check_retry(retry: Retry) -> None:
    check_exception_types(retry.transient, f"Retry(transient={retry.transient!r})")
    check_delays(retry, str(retry))


def check_backoff(backoff: Backoff) -> None:
    check_delays(backoff, repr(backoff))


def check_dead_letter_queue(queue: DeadLetterQueue) -> None:
    if not is_whole_number(queue.max_retries, 0):
        raise ConfigError(f"DeadLetterQueue(max_retries={queue.max_retries!r}): need a whole number >= 0")
    if queue.topic is not None and not is_topic_name(queue.topic):
        raise ConfigError(f"DeadLetterQueue(topic={queue.topic!r}): {TOPIC_NAME_RULE}, or None to skip")
    check_exception_types(queue.dispatch_on, f"DeadLetterQueue(dispatch_on={queue.dispatch_on!r})")
    if queue.config is not None:
        if queue.topic is None:
            raise ConfigError(
                f"DeadLetterQueue(topic=None, config={queue.config!r}): topic=None dispatches nothing, "
                f"so there is no topic to declare; name the DLQ topic or drop config="
            )
        if not isinstance(queue.config, TopicConfig):
            raise ConfigError(
                f"DeadLetterQueue({queue.topic!r}, config={queue.config!r}): a TopicConfig(partitions=..., "
                f"replication_factor=..., settings={{...}}), or None to declare nothing"
            )
    if queue.cluster is not None and (not isinstance(queue.cluster, str) or not queue.cluster):
        raise ConfigError(
            f"DeadLetterQueue(cluster={queue.cluster!r}): a cluster name, "
            f"or None for the source topic's own cluster"
        )
