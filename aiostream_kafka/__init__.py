"""aiostream-kafka: an asyncio-native Kafka framework with first-class multi-cluster support."""

from aiostream_kafka.__about__ import __version__
from aiostream_kafka.app import App
from aiostream_kafka.config import Cluster
from aiostream_kafka.consumer import Consumer
from aiostream_kafka.errors import (
    AiostreamKafkaError,
    ClusterConnectionError,
    ConfigError,
    DecodeError,
    EncodeError,
    HandlerCancelledError,
    NotRunningError,
    ProcessingTimeoutError,
    ProduceError,
    UnknownClusterError,
)
from aiostream_kafka.instrumentation import LoggingListener, OpenTelemetryListener
from aiostream_kafka.instrumentation.monitor import Event, Monitor
from aiostream_kafka.jobs import Job, JobEnvelope, Jobs, UnknownJobError
from aiostream_kafka.messages import Message, Messages
from aiostream_kafka.processing import DeadLetterQueue, Retry
from aiostream_kafka.producing import Producer, ProducerRecord, ProducerRegistry
from aiostream_kafka.routing import Route, SubscriptionGroup, Topic, TopicConfig, Topology
from aiostream_kafka.runtime.backoff import Backoff

__all__ = [
    "AiostreamKafkaError",
    "App",
    "Backoff",
    "Cluster",
    "ClusterConnectionError",
    "ConfigError",
    "Consumer",
    "DeadLetterQueue",
    "DecodeError",
    "EncodeError",
    "Event",
    "HandlerCancelledError",
    "Job",
    "JobEnvelope",
    "Jobs",
    "LoggingListener",
    "Message",
    "Messages",
    "Monitor",
    "NotRunningError",
    "OpenTelemetryListener",
    "ProcessingTimeoutError",
    "ProduceError",
    "Producer",
    "ProducerRecord",
    "ProducerRegistry",
    "Retry",
    "Route",
    "SubscriptionGroup",
    "Topic",
    "TopicConfig",
    "Topology",
    "UnknownClusterError",
    "UnknownJobError",
    "__version__",
]
