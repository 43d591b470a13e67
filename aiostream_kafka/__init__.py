"""aiostream-kafka: an asyncio-native Kafka framework with first-class multi-cluster support.

What is exported here is what applications write, annotate and catch; the machinery behind
it (the topology, its clusters and subscription groups) stays in its own modules.
"""

from aiostream_kafka.__about__ import __version__
from aiostream_kafka.admin.check import CheckError
from aiostream_kafka.admin.client import GroupActiveError
from aiostream_kafka.app import App
from aiostream_kafka.consumer import Consumer
from aiostream_kafka.deprecation import module_getattr
from aiostream_kafka.errors import (
    AiostreamKafkaError,
    ClusterConnectionError,
    ClusterUnreachableError,
    ConfigError,
    CrossClusterTransactionError,
    DecodeError,
    EncodeError,
    FilterError,
    HandlerCancelledError,
    NotRunningError,
    ProcessingTimeoutError,
    ProduceError,
    ShutdownError,
    TransactionError,
    UnknownClusterError,
    VirtualPartitionKeyError,
)
from aiostream_kafka.instrumentation import LoggingListener, OpenTelemetryListener
from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent
from aiostream_kafka.instrumentation.output import configure_logging
from aiostream_kafka.jobs import Job, JobEnvelope, Jobs, UnknownJobError
from aiostream_kafka.messages import Message, Messages
from aiostream_kafka.processing import DeadLetterQueue, Pause, Retry, Throttle, VirtualPartitions
from aiostream_kafka.producing import Producer, ProducerRecord, ProducerRegistry
from aiostream_kafka.replication.failover import FailoverError
from aiostream_kafka.routing import TopicConfig
from aiostream_kafka.runtime.backoff import Backoff

__all__ = [
    "AiostreamKafkaError",
    "App",
    "Backoff",
    "CheckError",
    "ClusterConnectionError",
    "ClusterUnreachableError",
    "ConfigError",
    "Consumer",
    "CrossClusterTransactionError",
    "DeadLetterQueue",
    "DecodeError",
    "EncodeError",
    "FailoverError",
    "FilterError",
    "GroupActiveError",
    "HandlerCancelledError",
    "Job",
    "JobEnvelope",
    "Jobs",
    "LoggingListener",
    "Message",
    "Messages",
    "Monitor",
    "MonitorEvent",
    "NotRunningError",
    "OpenTelemetryListener",
    "Pause",
    "ProcessingTimeoutError",
    "ProduceError",
    "Producer",
    "ProducerRecord",
    "ProducerRegistry",
    "Retry",
    "ShutdownError",
    "Throttle",
    "TopicConfig",
    "TransactionError",
    "UnknownClusterError",
    "UnknownJobError",
    "VirtualPartitionKeyError",
    "VirtualPartitions",
    "__version__",
    "configure_logging",
]

__getattr__ = module_getattr(
    __name__,
    {
        "Event": ("aiostream_kafka.instrumentation.monitor:MonitorEvent", "aiostream_kafka.MonitorEvent"),
        "Cluster": ("aiostream_kafka.config:Cluster", "aiostream_kafka.config.Cluster"),
        "Route": ("aiostream_kafka.routing:Route", "aiostream_kafka.routing.Route"),
        "SubscriptionGroup": (
            "aiostream_kafka.routing:SubscriptionGroup",
            "aiostream_kafka.routing.SubscriptionGroup",
        ),
        "Topic": ("aiostream_kafka.routing:RoutedTopic", "aiostream_kafka.routing.RoutedTopic"),
        "Topology": ("aiostream_kafka.routing:Topology", "aiostream_kafka.routing.Topology"),
    },
)
