"""What the runtime takes from the app, and nothing more.

Listeners get this instead of the App: the clients to build, the producers (for
dead-letter queues and class-based consumers), the monitor, the clock and the listener
settings. So the runtime can be read, and built in a test, without the App, and it never
reaches back into it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.producing.registry import ProducerRegistry
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.clients import KafkaClients
from aiostream_kafka.runtime.clock import Clock


@dataclass(frozen=True)
class RuntimeContext:
    clients: KafkaClients
    producers: ProducerRegistry
    monitor: Monitor
    clock: Clock
    #: Sent to the brokers by every consumer.
    client_id: str
    #: Partitions of one subscription group processed at a time.
    concurrency: int
    #: The retry backoff of routes without a ``Retry`` of their own.
    retry_backoff: Backoff
    #: How long revoked partitions' batches may take to finish (seconds).
    revoke_timeout: float = 10.0
    #: How often each listener emits ``statistics.emitted`` (seconds; None: never).
    statistics_interval: float | None = 5.0
    #: After how long a batch in hand is reported slow and set aside (seconds; None: never).
    slow_batch_after: float | None = 30.0
    #: How many listeners this process runs: they share its CPU (see Listener.poll_size).
    listeners: int = 1
