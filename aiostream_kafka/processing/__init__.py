"""What happens when a handler fails (retries with backoff, dead-letter queues, fatal errors),
and what a route holds back from it (a throttle, a filter's pause)."""

from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.flow import Pause, Throttle
from aiostream_kafka.processing.policy import Decision, FailurePolicy, is_fatal
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions

__all__ = [
    "DeadLetterQueue",
    "Decision",
    "FailurePolicy",
    "Pause",
    "Retry",
    "Throttle",
    "VirtualPartitions",
    "is_fatal",
]
