"""Disaster recovery across clusters with Apache Kafka's MirrorMaker 2 (docs/disaster-recovery.md).

``app.replicas.declare("dr", of="primary")`` says that MirrorMaker replicates ``primary`` to
``dr``; ``failover`` translates the app's consumer groups' offsets through MirrorMaker's
checkpoints and commits them on the replica; ``AIOSTREAM_KAFKA_FAILED_OVER=primary`` (or
``app.replicas.fail_over("primary")``) then runs what was on ``primary`` on ``dr``.
"""

from aiostream_kafka.replication.failover import FailoverError, FailoverReport, fail_back, fail_over
from aiostream_kafka.replication.policy import ReplicationPolicy
from aiostream_kafka.replication.records import Checkpoint, Heartbeat, OffsetSync
from aiostream_kafka.replication.replicas import FAILED_OVER_ENV, Replica, Replicas
from aiostream_kafka.replication.status import ReplicationStatus, replication_status

__all__ = [
    "FAILED_OVER_ENV",
    "Checkpoint",
    "FailoverError",
    "FailoverReport",
    "Heartbeat",
    "OffsetSync",
    "Replica",
    "Replicas",
    "ReplicationPolicy",
    "ReplicationStatus",
    "fail_back",
    "fail_over",
    "replication_status",
]
