"""In-memory Kafka: partitioned logs and committed offsets for one cluster, no network.

Just enough of Kafka's behaviour for the runtime to be none the wiser: appends get the next
offset of their partition, keyed messages land on the partition Kafka's default
partitioner would choose (murmur2), consumer groups keep committed offsets and know their
running members, and consumers waiting for data are woken when it arrives. Transactions:
a transactional producer's records are in the log at once but hidden from read-committed
consumers until their transaction commits (an open transaction holds back what follows it
too, as Kafka's last stable offset does), and hidden for ever once it aborts; a producer
that starts with a transactional id fences the previous one (its open transaction aborted,
its later calls refused).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata

Header = tuple[str, bytes | None]
Record = ConsumerRecord  # what a consumer reads back: the same type aiokafka returns
Place = tuple[str, int, int]  # topic, partition, offset


class MemoryCluster:
    """One cluster's topics, as lists of records per partition, and its groups' offsets and members."""

    def __init__(self, name: str, *, default_partitions: int = 1) -> None:
        self.name = name
        self.default_partitions = default_partitions
        self.logs: dict[str, list[list[ConsumerRecord[bytes, bytes]]]] = {}
        #: The replication factor each topic was created with (one copy is kept all the same).
        self.replication_factors: dict[str, int] = {}
        self.committed: dict[tuple[str, TopicPartition], int] = {}
        #: The running members of each consumer group: member id -> client id.
        self.members: dict[str, dict[str, str]] = {}
        self._member_ids = itertools.count(1)
        #: What the app's own producers sent here, in order (fed messages are not in it).
        self.produced: list[ConsumerRecord[bytes, bytes]] = []
        self._round_robin: dict[str, itertools.count[int]] = {}
        self._watchers: set[Callable[[], None]] = set()
        #: The records of each transactional id's open transaction, and of every aborted one.
        self.open: dict[str, set[Place]] = {}
        self.aborted: set[Place] = set()
        #: Each transactional id's current producer (its epoch): older ones are fenced.
        self.epochs: dict[str, int] = {}

    def create_topic(self, topic: str, partitions: int | None = None, replication_factor: int = 1) -> None:
        """Create ``topic`` if it does not exist (as a broker with auto-creation would)."""
        if topic not in self.logs:
            self.logs[topic] = [[] for _ in range(partitions or self.default_partitions)]
            self.replication_factors[topic] = replication_factor

    def add_partitions(self, topic: str, total: int) -> None:
        """Grow ``topic`` to ``total`` partitions (new ones empty)."""
        log = self.logs[topic]
        log += [[] for _ in range(total - len(log))]

    def delete_topic(self, topic: str) -> None:
        """Drop ``topic`` and its messages (what was produced to it stays in ``produced``)."""
        del self.logs[topic]
        self.replication_factors.pop(topic, None)
        self._round_robin.pop(topic, None)

    def join(self, group_id: str, client_id: str) -> str:
        """Make a consumer a member of ``group_id``; returns its member id."""
        member = f"{client_id or 'consumer'}-{next(self._member_ids)}"
        self.members.setdefault(group_id, {})[member] = client_id
        return member

    def leave(self, group_id: str, member: str) -> None:
        members = self.members.get(group_id, {})
        members.pop(member, None)
        if not members:
            self.members.pop(group_id, None)

    def groups(self) -> set[str]:
        """Every group with members or committed offsets (as Kafka lists them)."""
        return set(self.members) | {group for group, _ in self.committed}

    def partitions(self, topic: str) -> int:
        self.create_topic(topic)
        return len(self.logs[topic])

    def partition_for(self, topic: str, key: bytes | None) -> int:
        """Kafka's default choice: murmur2 of the key; keyless messages go round robin."""
        count = self.partitions(topic)
        if key is None:
            return next(self._round_robin.setdefault(topic, itertools.count())) % count
        hashed: int = murmur2(key)
        return (hashed & 0x7FFFFFFF) % count

    def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] | None = None,
        partition: int | None = None,
        timestamp_ms: int,
        produced: bool = False,
        transaction: str | None = None,
    ) -> RecordMetadata:
        count = self.partitions(topic)
        if partition is None:
            partition = self.partition_for(topic, key)
        if not 0 <= partition < count:
            raise ValueError(
                f"topic {topic!r} on cluster {self.name!r} has {count} partition(s); "
                f"there is no partition {partition}"
            )
        log = self.logs[topic][partition]
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            topic=topic,
            partition=partition,
            offset=len(log),
            timestamp=timestamp_ms,
            timestamp_type=0,
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=len(key) if key is not None else -1,
            serialized_value_size=len(value) if value is not None else -1,
            headers=tuple(headers or ()),
        )
        log.append(record)
        if produced:
            self.produced.append(record)
        if transaction is not None:
            self.open.setdefault(transaction, set()).add((topic, partition, record.offset))
        for wake in list(self._watchers):
            wake()
        tp = TopicPartition(topic, partition)
        return RecordMetadata(topic, partition, tp, record.offset, timestamp_ms, 0, 0)

    # --- transactions --------------------------------------------------------------------

    def fence(self, transactional_id: str) -> int:
        """A producer with ``transactional_id`` starts: the previous one's open transaction is
        aborted and it is fenced. Returns the new producer's epoch."""
        self.end_transaction(transactional_id, commit=False)
        epoch = self.epochs[transactional_id] = self.epochs.get(transactional_id, -1) + 1
        return epoch

    def end_transaction(
        self,
        transactional_id: str,
        *,
        commit: bool,
        offsets: Mapping[tuple[str, TopicPartition], int] | None = None,
    ) -> None:
        """Commit (with the consumer ``offsets`` sent to it) or abort the open transaction."""
        places = self.open.pop(transactional_id, set())
        if commit:
            self.committed.update(offsets or {})
        else:
            self.aborted |= places
        for wake in list(self._watchers):
            wake()

    def stable_end(self, tp: TopicPartition) -> int:
        """Where a read-committed consumer stops: the first record of an open transaction."""
        firsts = [
            o for places in self.open.values() for t, p, o in places if (t, p) == (tp.topic, tp.partition)
        ]
        return min(firsts, default=self.end_offset(tp))

    def visible(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Whether a read-committed consumer sees ``record``: not aborted, not in an open transaction."""
        place = (record.topic, record.partition, record.offset)
        return place not in self.aborted and not any(place in open_ for open_ in self.open.values())

    def read(self, tp: TopicPartition, start: int, limit: int) -> list[ConsumerRecord[bytes, bytes]]:
        return self.logs[tp.topic][tp.partition][start : start + limit]

    def end_offset(self, tp: TopicPartition) -> int:
        return len(self.logs[tp.topic][tp.partition])

    def records(self, topics: Iterable[str] | None = None) -> list[ConsumerRecord[bytes, bytes]]:
        names = self.logs if topics is None else [t for t in topics if t in self.logs]
        return [r for name in names for log in self.logs[name] for r in log]

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` after every append; returns how to stop."""
        self._watchers.add(wake)
        return lambda: self._watchers.discard(wake)
