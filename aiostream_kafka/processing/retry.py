"""How long a failing partition waits before its batch is tried again."""

from __future__ import annotations

from dataclasses import dataclass

from aiostream_kafka import deprecation
from aiostream_kafka.contracts.failures import check_retry
from aiostream_kafka.runtime.backoff import Backoff


@dataclass(frozen=True, init=False)
class Retry:
    """Exponential backoff between attempts: ``initial``, then doubling up to ``maximum`` seconds
    (as ``Backoff``, the App's, says it).

    Without a dead-letter queue a failing batch is retried for as long as it fails (nothing
    is lost); a ``DeadLetterQueue`` decides when to give up on a message.

    ``transient``: your own exception types that, like the infrastructure's faults, mean
    "not now" rather than "never": the partition waits (same backoff) until they pass and
    they never count toward a DLQ's ``max_retries``. Kafka's own are always transient: an
    unreachable cluster, a leader election, a coordinator move, a request that timed out
    (aiokafka's retriable errors, ``ClusterConnectionError``, ``KafkaTimeoutError``), and any
    error raised ``from`` one of them.

    ``backoff=`` and ``max_backoff=`` are the old names of ``initial=`` and ``maximum=``.
    """

    initial: float
    maximum: float
    multiplier: float
    jitter: float
    transient: tuple[type[Exception], ...]

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        jitter: float = 0.1,
        transient: tuple[type[Exception], ...] = (),
        *,
        backoff: float | None = None,
        max_backoff: float | None = None,
    ) -> None:
        if backoff is not None:
            deprecation.warn("Retry(backoff=...)", "Retry(initial=...)")
            initial = backoff
        if max_backoff is not None:
            deprecation.warn("Retry(max_backoff=...)", "Retry(maximum=...)")
            maximum = max_backoff
        for name, value in (
            ("initial", initial),
            ("maximum", maximum),
            ("multiplier", multiplier),
            ("jitter", jitter),
            ("transient", transient),
        ):
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        check_retry(self)

    @property
    def backoff(self) -> float:
        deprecation.warn("Retry.backoff", "Retry.initial")
        return self.initial

    @property
    def max_backoff(self) -> float:
        deprecation.warn("Retry.max_backoff", "Retry.maximum")
        return self.maximum

    def as_backoff(self) -> Backoff:
        return Backoff(self.initial, self.maximum, self.multiplier, self.jitter)
