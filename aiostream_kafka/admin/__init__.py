"""Administration of every cluster: topics, configs, consumer groups, offsets, reading messages."""

from aiostream_kafka.admin.client import Admin, GroupActiveError
from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.admin.types import (
    Broker,
    ClusterInfo,
    ConsumerGroupInfo,
    PartitionLag,
    TopicDescription,
    TopicSpec,
)
from aiostream_kafka.errors import ClusterUnreachableError

__all__ = [
    "Admin",
    "AdminRegistry",
    "Broker",
    "ClusterInfo",
    "ClusterUnreachableError",
    "ConsumerGroupInfo",
    "GroupActiveError",
    "PartitionLag",
    "TopicDescription",
    "TopicSpec",
]
