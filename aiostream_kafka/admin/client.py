"""Administration of one Kafka cluster: topics, their configs, consumer groups and their offsets.

An ``Admin`` connects lazily, on the first call, and answers in the plain records of
``admin/types.py``. Requests the broker refuses raise aiokafka's error class for the
broker's error code (``TopicAlreadyExistsError``, ``UnknownTopicOrPartitionError``, ...)
with a message naming the cluster and the topic; a cluster that does not answer raises
``ClusterUnreachableError``. Its clients come from a ``KafkaClients`` (``app.clients`` for
``app.admin``), so the testing harness can answer from its in-memory clusters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import anyio
from aiokafka import TopicPartition
from aiokafka.admin import NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RebalanceInProgressError,
    RequestTimedOutError,
    UnknownMemberIdError,
    UnknownTopicOrPartitionError,
    for_code,
)

from aiostream_kafka.admin.types import (
    Broker,
    ClusterInfo,
    ConsumerGroupInfo,
    PartitionLag,
    TopicDescription,
    TopicSpec,
)
from aiostream_kafka.config import Cluster
from aiostream_kafka.contracts.checks import is_whole_number
from aiostream_kafka.diagnosis import PROBE_TIMEOUT, connection_error
from aiostream_kafka.errors import AiostreamKafkaError, ClusterUnreachableError
from aiostream_kafka.messages import Message, from_records
from aiostream_kafka.runtime.clients import AdminClient, KafkaClients, ReaderClient

T = TypeVar("T")

#: Group states in which nobody consumes, so committed offsets may be rewritten.
INACTIVE_GROUP_STATES = frozenset({"Empty", "Dead"})

#: DescribeConfigs' config_source for a value set on the topic itself (not a broker default).
_DYNAMIC_TOPIC_CONFIG = 1
_GROUP_ID_NOT_FOUND = 69
_NO_ANSWER = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    asyncio.TimeoutError,
    TimeoutError,
    OSError,
)
_COMMIT_REFUSED = (CommitFailedError, IllegalGenerationError, UnknownMemberIdError, RebalanceInProgressError)


class GroupActiveError(AiostreamKafkaError, RuntimeError):
    """Offsets of a consumer group with members cannot be reset: stop its consumers first."""


class Admin:
    """Administration of one cluster.

    ``Admin(cluster)`` connects on first use and keeps its connection until ``close()``
    (or the end of ``async with``); after ``close()`` the next call connects again.
    ``timeout`` bounds connecting and each request, in seconds. ``clients`` makes its
    Kafka clients (aiokafka's unless given).
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        client_id: str = "aiostream-kafka-admin",
        timeout: float = 10.0,
        clients: KafkaClients | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"Admin(timeout=...) must be positive seconds, not {timeout!r}")
        #: The cluster's name; its ``Cluster`` (name and settings) is what this connects with.
        self.cluster = cluster.name
        self._kafka_cluster = cluster
        self.client_id = client_id
        self.timeout = timeout
        self.clients = clients or KafkaClients()
        self._client: AdminClient | None = None
        self._connecting = asyncio.Lock()

    @property
    def name(self) -> str:
        """The cluster's name in the app."""
        return self.cluster

    def __repr__(self) -> str:
        return f"<Admin {self.name} ({self._kafka_cluster.servers})>"

    # --- connection ----------------------------------------------------------------------

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Drop the connection; calling it again, or on an Admin never used, does nothing."""
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.close()

    def _client_settings(self) -> dict[str, Any]:
        """What every client of this Admin is made with (the cluster's connection is added by ``clients``)."""
        return {"client_id": self.client_id, "request_timeout_ms": int(self.timeout * 1000)}

    def _unreachable(self, error: BaseException) -> ClusterUnreachableError:
        detail = f": {error}" if str(error) else ""
        return ClusterUnreachableError(
            f"cluster {self.name!r} ({self._kafka_cluster.servers}) did not answer within "
            f"{float(self.timeout)}s{detail}"
        )

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Turn a cluster that stopped answering into ``ClusterUnreachableError``."""
        try:
            yield
        except _NO_ANSWER as error:
            raise self._unreachable(error) from error

    async def _retrying(self, request: Callable[[], Awaitable[T]]) -> T:
        """``request()``, again while the cluster says to retry (its group coordinator is loading,
        say), for up to ``timeout``; a cluster that does not answer is ``ClusterUnreachableError``."""
        deadline = time.monotonic() + self.timeout
        with self._answering():
            while True:
                try:
                    return await request()
                except KafkaError as error:
                    if not error.retriable or time.monotonic() >= deadline:
                        raise
                await anyio.sleep(0.1)

    async def _admin(self) -> AdminClient:
        """The connected admin client, connecting (within ``timeout``) the first time."""
        async with self._connecting:
            if self._client is None:
                client = self.clients.admin(self._kafka_cluster, **self._client_settings())
                try:
                    with anyio.fail_after(self.timeout):
                        await client.start()
                except BaseException as error:
                    with anyio.CancelScope(shield=True):
                        await client.close()
                    await self._not_connected(error)
                    raise
                self._client = client
            return self._client

    async def _not_connected(self, error: BaseException) -> None:
        """Raise what says why connecting failed with ``error``, if it was the cluster's doing."""
        if isinstance(error, KafkaConnectionError):  # refused, unresolvable, TLS, login...
            probe = min(self.timeout, PROBE_TIMEOUT)
            raise await connection_error(self._kafka_cluster, error, within=probe) from error
        if isinstance(error, _NO_ANSWER):
            raise self._unreachable(error) from error

    @asynccontextmanager
    async def _consumer(self, group_id: str | None = None) -> AsyncIterator[ReaderClient]:
        """A short-lived consumer on this cluster: group-less unless ``group_id``, never auto-committing."""
        consumer = self.clients.reader(
            self._kafka_cluster,
            **self._client_settings(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            with anyio.fail_after(self.timeout):
                await consumer.start()
        except BaseException as error:
            with anyio.CancelScope(shield=True):
                await consumer.stop()
            await self._not_connected(error)
            raise
        try:
            with self._answering():
                yield consumer
        finally:
            with anyio.CancelScope(shield=True):
                await consumer.stop()

    # --- helpers -------------------------------------------------------------------------

    async def _all_topics(self) -> dict[str, dict[str, Any]]:
        """Metadata of every topic, by name.

        Always asks for all topics: a metadata request naming a topic that does not exist
        creates it on brokers with ``auto.create.topics.enable``, and describing must not.
        """
        admin = await self._admin()
        with self._answering():
            topics = await admin.describe_topics(None)
        return {str(topic["topic"]): topic for topic in topics}

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        """Every partition of ``topic``, which must exist."""
        metadata = (await self._all_topics()).get(topic)
        if metadata is None or not metadata["partitions"]:
            raise self._no_topic(topic)
        return sorted(TopicPartition(topic, p["partition"]) for p in metadata["partitions"])

    def _no_topic(self, topic: str) -> UnknownTopicOrPartitionError:
        return UnknownTopicOrPartitionError(f"topic {topic!r} does not exist on cluster {self.name!r}")

    def _refused(self, code: int, what: str, message: str | None = None) -> Exception:
        error_class: type[Exception] = for_code(code)
        return error_class(f"cluster {self.name!r}: {what}" + (f": {message}" if message else ""))

    async def _until(self, done: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        """Wait (up to ``timeout``) until the cluster's metadata shows a change it acknowledged."""
        with anyio.move_on_after(self.timeout):
            while True:  # polling: the cluster sends no notice when its metadata changes
                if done(await self._all_topics()):
                    return
                await anyio.sleep(0.05)

    # --- cluster -------------------------------------------------------------------------

    async def cluster_info(self) -> ClusterInfo:
        """The cluster's id, its controller and its brokers."""
        admin = await self._admin()
        with self._answering():
            described = await admin.describe_cluster()
        controller = described.get("controller_id")
        brokers = sorted(
            (Broker(int(b["node_id"]), str(b["host"]), int(b["port"])) for b in described["brokers"]),
            key=lambda broker: broker.node_id,
        )
        return ClusterInfo(
            cluster=self.name,
            cluster_id=described.get("cluster_id"),
            controller_id=controller if controller is not None and controller >= 0 else None,
            brokers=tuple(brokers),
        )

    # --- topics --------------------------------------------------------------------------

    async def list_topics(self, *, internal: bool = False) -> list[str]:
        """Topic names, sorted; ``__``-prefixed internal topics only when ``internal``."""
        names = await self._all_topics()
        return sorted(name for name in names if internal or not name.startswith("__"))

    async def describe_topics(self, names: Iterable[str]) -> dict[str, TopicDescription]:
        """The named topics that exist, by name; a missing topic is simply absent."""
        wanted = set(names)
        if not wanted:
            return {}
        described: dict[str, TopicDescription] = {}
        for name, metadata in sorted((await self._all_topics()).items()):
            if name not in wanted:
                continue
            partitions = metadata["partitions"]
            described[name] = TopicDescription(
                name=name,
                partitions=len(partitions),
                replication_factor=max((len(p["replicas"]) for p in partitions), default=0),
                internal=bool(metadata.get("is_internal", False)),
            )
        return described

    async def create_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Create topics; returns once the cluster's metadata shows them (or after ``timeout``).

        A topic that exists already raises ``TopicAlreadyExistsError``.
        """
        specs = list(specs)
        if not specs:
            return
        admin = await self._admin()
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs={key: str(value) for key, value in spec.settings.items()},
            )
            for spec in specs
        ]
        with self._answering():
            response = await admin.create_topics(new_topics)
        for topic, code, *rest in response.topic_errors:
            if code:
                raise self._refused(code, f"cannot create topic {topic!r}", rest[0] if rest else None)

        def created(topics: dict[str, dict[str, Any]]) -> bool:
            return all(
                spec.name in topics
                and (spec.partitions < 1 or len(topics[spec.name]["partitions"]) == spec.partitions)
                and all(p["leader"] >= 0 for p in topics[spec.name]["partitions"])
                for spec in specs
            )

        await self._until(created)

    async def delete_topics(self, names: Iterable[str]) -> None:
        """Delete topics (their messages with them); returns once they are gone (or after ``timeout``).

        A topic that does not exist raises ``UnknownTopicOrPartitionError``.
        """
        names = list(names)
        if not names:
            return
        admin = await self._admin()
        with self._answering():
            response = await admin.delete_topics(names)
        for topic, code, *rest in response.topic_error_codes:
            if code:
                raise self._refused(code, f"cannot delete topic {topic!r}", rest[0] if rest else None)
        await self._until(lambda topics: not any(name in topics for name in names))

    async def add_partitions(self, topic: str, total: int) -> None:
        """Grow ``topic`` to ``total`` partitions; Kafka never removes partitions.

        Raises ``ValueError`` naming the topic when ``total`` is not more than it has.
        """
        current = len(await self._partitions(topic))
        if total <= current:
            raise ValueError(
                f"topic {topic!r} on cluster {self.name!r} has {current} partitions; "
                f"add_partitions(total={total}) must ask for more (partitions never shrink)"
            )
        admin = await self._admin()
        with self._answering():
            await admin.create_partitions({topic: NewPartitions(total)})

        def grown(topics: dict[str, dict[str, Any]]) -> bool:
            metadata = topics.get(topic)
            return metadata is not None and len(metadata["partitions"]) == total

        await self._until(grown)

    async def _config_entries(self, topic: str) -> list[tuple[str, str | None, bool]]:
        """The topic's configs as (name, value, set on the topic itself)."""
        admin = await self._admin()
        with self._answering():
            responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        response = responses[0]
        code, message, _type, _name, entries = response.resources[0][:5]
        if code:
            raise self._refused(code, f"cannot describe the config of topic {topic!r}", message)
        if response.API_VERSION == 0:  # (name, value, read_only, is_default, is_sensitive)
            return [(str(e[0]), e[1], not e[3]) for e in entries]
        # (name, value, read_only, config_source, is_sensitive, synonyms)
        return [(str(e[0]), e[1], e[3] == _DYNAMIC_TOPIC_CONFIG) for e in entries]

    async def describe_config(self, topic: str) -> dict[str, str]:
        """Every config of ``topic`` with its value as a string, defaults included.

        Sensitive values, which Kafka does not reveal, are left out.
        """
        return {name: value for name, value, _ in await self._config_entries(topic) if value is not None}

    async def alter_config(self, topic: str, settings: Mapping[str, str]) -> None:
        """Set configs of ``topic``, keeping every other setting it has.

        aiokafka only offers the non-incremental AlterConfigs request, which replaces the
        topic's whole set of overrides. So this reads the values set on the topic now and
        sends them merged with ``settings``: the settings not named keep their values. A
        change made by someone else between the read and the write can be lost. Returns once
        the broker reports the new values (or after ``timeout``), so that a following
        ``alter_config`` reads them.
        """
        if not settings:
            return
        overrides = {
            name: value
            for name, value, on_topic in await self._config_entries(topic)
            if on_topic and value is not None
        }
        merged = {**overrides, **{key: str(value) for key, value in settings.items()}}
        admin = await self._admin()
        with self._answering():
            responses = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, merged)])
        for response in responses:
            for code, message, *_ in response.resources:
                if code:
                    raise self._refused(code, f"cannot alter the config of topic {topic!r}", message)
        with anyio.move_on_after(self.timeout):
            while True:  # the controller has the change; the broker answering describes learns it soon
                current = await self.describe_config(topic)
                if all(current.get(name) == value for name, value in merged.items()):
                    return
                await anyio.sleep(0.05)

    # --- consumer groups -----------------------------------------------------------------

    async def consumer_groups(self) -> list[str]:
        """Every consumer group's id, sorted."""
        admin = await self._admin()
        groups = await self._retrying(admin.list_consumer_groups)
        return sorted({str(group[0]) for group in groups})

    async def _group_state(self, group_id: str) -> tuple[str, int]:
        """The group's state and member count; ``("Dead", 0)`` for a group Kafka does not know."""
        admin = await self._admin()

        async def describe() -> tuple[str, int]:
            responses = await admin.describe_consumer_groups([group_id])
            code, _group, state, _protocol_type, _protocol, members, *_ = responses[0].groups[0]
            if code == _GROUP_ID_NOT_FOUND:
                return "Dead", 0
            if code:
                raise self._refused(code, f"cannot describe consumer group {group_id!r}")
            return str(state) or "Unknown", len(members)

        return await self._retrying(describe)

    async def consumer_group(self, group_id: str) -> ConsumerGroupInfo:
        """The group's state, members, and per partition its committed offset, end offset and lag.

        Every partition of every topic the group committed to is listed; a partition it
        never committed has ``committed=None`` (all its messages count as lag).
        """
        state, members = await self._group_state(group_id)
        admin = await self._admin()
        offsets = await self._retrying(lambda: admin.list_consumer_group_offsets(group_id))
        committed = {
            (tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
        }
        topics = await self._all_topics()
        partitions = sorted(
            TopicPartition(topic, p["partition"])
            for topic in {topic for topic, _ in committed}
            if topic in topics  # a deleted topic has no end offsets
            for p in topics[topic]["partitions"]
        )
        ends: dict[Any, int] = {}
        if partitions:
            async with self._consumer() as consumer:
                ends = await consumer.end_offsets(partitions)
        return ConsumerGroupInfo(
            group_id=group_id,
            state=state,
            members=members,
            partitions=tuple(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=committed.get((tp.topic, tp.partition)),
                    end=int(ends[tp]),
                )
                for tp in partitions
            ),
        )

    async def reset_offsets(self, group_id: str, topic: str, to: int | str | datetime) -> dict[int, int]:
        """Commit new offsets for every partition of ``topic`` in an inactive group.

        ``to`` is ``"earliest"``, ``"latest"``, a datetime (the first offset at or after it;
        the end for a partition with nothing that late; a naive datetime is local time) or
        an offset, kept within each partition's first and end offsets. Raises
        ``GroupActiveError`` unless the group is Empty or unknown. Returns
        ``{partition: new offset}``.
        """
        _check_reset_target(to)
        partitions = await self._partitions(topic)
        state, members = await self._group_state(group_id)
        if state not in INACTIVE_GROUP_STATES:
            raise GroupActiveError(
                f"consumer group {group_id!r} on cluster {self.name!r} is {state} with {members} "
                f"member(s); stop its consumers before resetting its offsets"
            )
        async with self._consumer(group_id) as consumer:
            consumer.assign(partitions)
            beginnings = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            if to == "earliest":
                targets = {tp: beginnings[tp] for tp in partitions}
            elif to == "latest":
                targets = {tp: ends[tp] for tp in partitions}
            elif isinstance(to, datetime):
                at = max(0, int(to.timestamp() * 1000))
                found = await consumer.offsets_for_times(dict.fromkeys(partitions, at))
                targets = {
                    tp: ends[tp] if (hit := found.get(tp)) is None else hit.offset for tp in partitions
                }
            else:
                assert isinstance(to, int)
                targets = {tp: min(max(to, beginnings[tp]), ends[tp]) for tp in partitions}
            try:
                await consumer.commit({tp: int(offset) for tp, offset in targets.items()})
            except _COMMIT_REFUSED as error:
                raise GroupActiveError(
                    f"consumer group {group_id!r} on cluster {self.name!r} became active while its "
                    f"offsets were being reset; stop its consumers and try again ({error})"
                ) from error
        return {tp.partition: int(offset) for tp, offset in sorted(targets.items())}

    async def commit_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit ``{(topic, partition): offset}`` for an inactive group, as they are.

        What failover does with offsets it translated (docs/disaster-recovery.md); raises
        ``GroupActiveError`` unless the group is Empty or unknown.
        """
        state, members = await self._group_state(group_id)
        if state not in INACTIVE_GROUP_STATES:
            raise GroupActiveError(
                f"consumer group {group_id!r} on cluster {self.name!r} is {state} with {members} "
                f"member(s); stop its consumers before committing its offsets"
            )
        targets = {
            TopicPartition(topic, partition): int(offset) for (topic, partition), offset in offsets.items()
        }
        async with self._consumer(group_id) as consumer:
            consumer.assign(list(targets))
            try:
                await consumer.commit(targets)
            except _COMMIT_REFUSED as error:
                raise GroupActiveError(
                    f"consumer group {group_id!r} on cluster {self.name!r} became active while its "
                    f"offsets were being committed; stop its consumers and try again ({error})"
                ) from error

    # --- messages ------------------------------------------------------------------------

    async def offsets(self, topic: str) -> dict[int, tuple[int, int]]:
        """Per partition of ``topic``: its first and its end offset (so: how many messages it holds)."""
        partitions = await self._partitions(topic)
        async with self._consumer() as consumer:
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
        return {tp.partition: (starts[tp], ends[tp]) for tp in partitions}

    async def read(
        self, topic: str, *, partition: int = 0, start: int | str = "earliest", count: int = 10
    ) -> list[Message[bytes]]:
        """Up to ``count`` messages of one partition from ``start``, without a consumer group.

        ``start`` is ``"earliest"``, ``"latest"`` (so: none) or an offset. Reading stops
        at the partition's end as it was when reading began.
        """
        if not (start in ("earliest", "latest") or is_whole_number(start, 0)):
            raise ValueError(f"read(start={start!r}): an offset >= 0, 'earliest' or 'latest'")
        if count < 0:
            raise ValueError(f"read(count={count!r}): a number of messages >= 0")
        tp = TopicPartition(topic, partition)
        if tp not in await self._partitions(topic):
            raise UnknownTopicOrPartitionError(
                f"topic {topic!r} on cluster {self.name!r} has no partition {partition}"
            )
        messages: list[Message[bytes]] = []
        async with self._consumer() as consumer:
            consumer.assign([tp])
            first = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            position = first if start == "earliest" else end if start == "latest" else max(int(start), first)
            if position >= end or count == 0:
                return []
            consumer.seek(tp, position)
            quiet_since = time.monotonic()
            while len(messages) < count and position < end:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=count - len(messages))
                records = [record for record in batch.get(tp, []) if record.offset < end]
                messages += from_records(records, self.name)
                moved = await consumer.position(tp)
                if records or moved != position:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > self.timeout:
                    break  # the broker has nothing more to give before the end: do not hang
                position = moved
        return messages[:count]


def _check_reset_target(to: object) -> None:
    if not (to in ("earliest", "latest") or isinstance(to, datetime) or is_whole_number(to, 0)):
        raise ValueError(f"reset_offsets(to={to!r}): 'earliest', 'latest', a datetime or an offset >= 0")
