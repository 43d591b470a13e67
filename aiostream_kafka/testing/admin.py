"""``app.admin`` under the testing harness: an admin client of an in-memory cluster.

It answers as a broker would, in Kafka's own responses, so the very same ``Admin`` code
reads them: topics are created, listed, described, grown and deleted in the in-memory
cluster (a refusal carries Kafka's error code), and consumer groups are listed and
described from its committed offsets and running members. What memory has no truth for
(brokers, topic configs, deleting a topic a running consumer reads) raises
``NotModelledError`` saying so, rather than answering something made up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from aiokafka import TopicPartition
from aiokafka.admin import NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource
from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreatePartitionsResponse_v0,
    CreateTopicsResponse_v1,
    DeleteTopicsResponse_v0,
    DescribeGroupsResponse_v0,
)
from aiokafka.protocol.api import Response
from aiokafka.structs import OffsetAndMetadata

from aiostream_kafka.errors import AiostreamKafkaError
from aiostream_kafka.testing.memory import MemoryCluster
from aiostream_kafka.topic_names import TOPIC_NAME_RULE, is_topic_name

if TYPE_CHECKING:
    from aiostream_kafka.testing.clients import MemoryConsumer

_UNKNOWN_TOPIC_OR_PARTITION = 3
_INVALID_TOPIC = 17
_TOPIC_ALREADY_EXISTS = 36
_INVALID_PARTITIONS = 37
_INVALID_REPLICATION_FACTOR = 38
_GROUP_ID_NOT_FOUND = 69
_BROKER_DEFAULT = -1  # NewTopic's partitions or replication factor left to the broker


class NotModelledError(AiostreamKafkaError, NotImplementedError):
    """An admin operation the testing harness's in-memory clusters have no honest answer for."""


class MemoryAdminClient:
    """The admin client of one in-memory cluster (``runtime.clients.AdminClient``)."""

    def __init__(self, cluster: MemoryCluster, consumers: Sequence[MemoryConsumer]) -> None:
        self._cluster = cluster
        self._consumers = consumers  # the harness's, to know which topics are being read

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _not_modelled(self, what: str, instead: str) -> NoReturn:
        raise NotModelledError(
            f"{what} is not modelled by app.testing()'s in-memory cluster {self._cluster.name!r}; {instead}"
        )

    # --- cluster and topics ----------------------------------------------------------------

    async def describe_cluster(self) -> dict[str, Any]:
        self._not_modelled(
            "cluster_info()", "an in-memory cluster has no brokers: test it against a real Kafka cluster"
        )

    async def describe_topics(self, topics: list[str] | None) -> list[dict[str, Any]]:
        names = sorted(self._cluster.logs) if topics is None else topics
        return [self._topic_metadata(name) for name in names]

    def _topic_metadata(self, topic: str) -> dict[str, Any]:
        """What a MetadataResponse says of ``topic``: one node (0) leads every partition."""
        if topic not in self._cluster.logs:
            return {"error_code": _UNKNOWN_TOPIC_OR_PARTITION, "topic": topic, "partitions": []}
        replicas = list(range(self._cluster.replication_factors.get(topic, 1)))
        return {
            "error_code": 0,
            "topic": topic,
            "is_internal": False,
            "partitions": [
                {"error_code": 0, "partition": p, "leader": 0, "replicas": replicas, "isr": replicas}
                for p in range(len(self._cluster.logs[topic]))
            ],
        }

    async def create_topics(self, new_topics: list[NewTopic]) -> Response:
        return CreateTopicsResponse_v1(topic_errors=[self._create(topic) for topic in new_topics])

    def _create(self, topic: NewTopic) -> tuple[str, int, str | None]:
        """Create one topic as a broker would (its settings accepted, not modelled): (name, code, why)."""
        name, partitions, replication = topic.name, topic.num_partitions, topic.replication_factor
        if not is_topic_name(name):
            return name, _INVALID_TOPIC, f"{name!r}: {TOPIC_NAME_RULE}"
        if name in self._cluster.logs:
            return name, _TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
        if partitions < 1 and partitions != _BROKER_DEFAULT:
            return name, _INVALID_PARTITIONS, "Number of partitions must be larger than 0."
        if replication < 1 and replication != _BROKER_DEFAULT:
            return name, _INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
        self._cluster.create_topic(
            name,
            None if partitions == _BROKER_DEFAULT else partitions,
            1 if replication == _BROKER_DEFAULT else replication,
        )
        return name, 0, None

    async def delete_topics(self, topics: list[str]) -> Response:
        codes = []
        for topic in topics:
            if topic not in self._cluster.logs:
                codes.append((topic, _UNKNOWN_TOPIC_OR_PARTITION))
                continue
            if self._being_read(topic):
                self._not_modelled(
                    f"deleting topic {topic!r} while the app consumes it",
                    "Kafka would rebalance it away from the app's consumers, which memory does not do: "
                    "delete it before app.testing() starts, or test this against a real Kafka cluster",
                )
            self._cluster.delete_topic(topic)
            codes.append((topic, 0))
        return DeleteTopicsResponse_v0(topic_error_codes=codes)

    def _being_read(self, topic: str) -> bool:
        return any(
            tp.topic == topic
            for consumer in self._consumers
            if consumer.running and consumer.cluster is self._cluster
            for tp in consumer.assignment()
        )

    async def create_partitions(self, topic_partitions: dict[str, NewPartitions]) -> Response:
        for topic, wanted in topic_partitions.items():
            if topic not in self._cluster.logs:
                self._refuse(_UNKNOWN_TOPIC_OR_PARTITION, topic, "the topic does not exist")
            current = len(self._cluster.logs[topic])
            if wanted.total_count <= current:
                self._refuse(_INVALID_PARTITIONS, topic, f"it has {current} partitions already")
        for topic, wanted in topic_partitions.items():
            self._cluster.add_partitions(topic, wanted.total_count)
        errors = [(topic, 0, None) for topic in topic_partitions]
        return CreatePartitionsResponse_v0(throttle_time_ms=0, topic_errors=errors)

    def _refuse(self, code: int, topic: str, message: str) -> NoReturn:
        """What aiokafka's ``create_partitions`` raises for a refusal."""
        raise for_code(code)(f"Could not create partitions for {topic}: {message}")

    async def describe_configs(self, config_resources: list[ConfigResource]) -> list[Response]:
        self._not_modelled(
            "describing topic configs",
            "it keeps no configs and knows no broker defaults: test configs against a real Kafka cluster",
        )

    async def alter_configs(self, config_resources: list[ConfigResource]) -> list[Response]:
        self._not_modelled(
            "altering topic configs",
            "it keeps no configs and knows no broker defaults: test configs against a real Kafka cluster",
        )

    # --- consumer groups -------------------------------------------------------------------

    async def list_consumer_groups(self) -> list[tuple[Any, ...]]:
        return [(group, "consumer") for group in sorted(self._cluster.groups())]

    async def describe_consumer_groups(self, group_ids: list[str]) -> list[Response]:
        return [DescribeGroupsResponse_v0(groups=[self._group(group) for group in group_ids])]

    def _group(self, group_id: str) -> tuple[Any, ...]:
        """(error code, group, state, protocol type, protocol, members), as DescribeGroups answers."""
        if group_id not in self._cluster.groups():
            return _GROUP_ID_NOT_FOUND, group_id, "Dead", "", "", []
        members = self._cluster.members.get(group_id, {})
        state = "Stable" if members else "Empty"
        described = [(member, client_id, "", b"", b"") for member, client_id in sorted(members.items())]
        return 0, group_id, state, "consumer", "", described

    async def list_consumer_group_offsets(self, group_id: str) -> dict[TopicPartition, OffsetAndMetadata]:
        return {
            tp: OffsetAndMetadata(offset, "")
            for (group, tp), offset in self._cluster.committed.items()
            if group == group_id
        }
