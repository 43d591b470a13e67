"""What happens when a handler fails: retries with backoff, dead-letter queues, fatal errors."""

from aiostream_kafka.processing.dead_letter import DeadLetterQueue
from aiostream_kafka.processing.policy import Decision, FailurePolicy, is_fatal
from aiostream_kafka.processing.retry import Retry
from aiostream_kafka.processing.virtual_partitions import VirtualPartitions

__all__ = ["DeadLetterQueue", "Decision", "FailurePolicy", "Retry", "VirtualPartitions", "is_fatal"]
