"""aiokafka's lines that only say a cluster is getting ready, shown as that and not as failures.

On a new topic or consumer group aiokafka logs, at WARNING and ERROR, what is the normal
way of starting: "Topic x not found in cluster metadata" until auto-creation has made the
topic, "Got error produce response ... NotLeaderForPartitionError, retrying" until its
partitions have leaders, and "Group Coordinator Request failed:
GroupCoordinatorNotAvailableError" or "Marking the coordinator dead" until the group has a
coordinator (a fresh cluster first creates ``__consumer_offsets``). A first ``make demo``
printed forty to seventy such lines before its first message. ``StartupNoise`` shows them
at DEBUG while they are what starting looks like: a topic's for ``grace`` seconds after its
first (a produce retried for want of a leader only on a topic that was missing that
recently); a group's until the group has joined (``partitions.assigned``), and no longer
than ``grace`` either. Past that the same line is news (a topic nobody creates, a
coordinator that never comes, a leader that moved) and keeps its own level, the first time
with how long it has lasted. Every other line of aiokafka passes untouched, so
an unreachable cluster, a refused login or a failed commit shows as before.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent
from aiostream_kafka.runtime.reachability import CLIENT_CLUSTER

#: Seconds a benign line stays benign: a fresh cluster elects a coordinator and auto-creates
#: a topic in a few seconds; what lasts longer than this is a problem to see.
GRACE = 20.0

#: A topic that does not exist yet (auto-creation is under way, or it will be created).
TOPIC_MISSING = re.compile(
    r"Topic (?P<topic>\S+) "
    r"(?:not found in cluster metadata|is not available during auto-create initialization)"
)
#: A produce to a partition whose leader is not elected yet: benign on a topic just created.
LEADER_MISSING = re.compile(
    r"Got error produce response on topic-partition TopicPartition\(topic='(?P<topic>[^']+)'.*"
    r"(?:NotLeaderForPartition|LeaderNotAvailable)"
)
#: A group whose coordinator is not elected yet; one form names the group.
COORDINATOR_MISSING = re.compile(
    r"Group Coordinator Request failed: .*GroupCoordinatorNotAvailable|"
    r"Marking the coordinator dead \(node \S+\) ?for group (?P<group>.+)\.$"
)


@dataclass
class _Since:
    first: float
    demoted: int = 0
    reported: bool = False


class StartupNoise(logging.Filter):
    """``groups``: each cluster's consumer group ids, whose coordinator lines are benign until they join."""

    def __init__(
        self,
        groups: Mapping[str, Iterable[str]],
        *,
        grace: float = GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._groups = {cluster: frozenset(ids) for cluster, ids in groups.items()}
        self._joined: set[tuple[str, str]] = set()
        self._grace = grace
        self._clock = clock
        self._seen: dict[tuple[str, str, str], _Since] = {}  # (kind, cluster, topic or group) -> since
        self._loggers: list[logging.Logger] = []
        self._unsubscribe: Callable[[], None] | None = None

    # --- installing ----------------------------------------------------------------------

    def install(self, monitor: Monitor) -> None:
        """Filter every aiokafka logger (a filter on a parent does not see its children's records)."""
        names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "aiokafka"]
        self._loggers = [logging.getLogger(name) for name in sorted({"aiokafka", *names})]
        for logger in self._loggers:
            logger.addFilter(self)
        self._unsubscribe = monitor.subscribe("partitions.assigned", self.joined)

    def uninstall(self) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers = []
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def joined(self, event: MonitorEvent) -> None:
        """A group has its coordinator and its partitions: its coordinator lines are news from now on."""
        self._joined.add((event["cluster"], event["group"]))

    # --- reading aiokafka's lines --------------------------------------------------------

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        cluster = CLIENT_CLUSTER.get() or ""
        if (found := TOPIC_MISSING.search(text)) is not None:
            key = ("topic", cluster, found["topic"])
            starting = True
        elif (found := LEADER_MISSING.search(text)) is not None:
            # Only on a topic that was missing a moment ago: later, a leader moving is news.
            created = self._seen.get(("topic", cluster, found["topic"]))
            if created is None or self._clock() - created.first >= self._grace:
                return True
            key = ("leader", cluster, found["topic"])
            starting = True
        elif (found := COORDINATOR_MISSING.search(text)) is not None:
            group = found["group"]
            key = ("group", cluster, group or "")
            starting = self._joining(cluster, group)
        else:
            return True
        now = self._clock()
        since = self._seen.setdefault(key, _Since(now))
        if starting and now - since.first < self._grace:
            since.demoted += 1
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        if since.demoted and not since.reported:
            since.reported = True
            record.msg, record.args = (
                (
                    f"{text} (still so {now - since.first:.0f}s after the first such line; "
                    f"{since.demoted} before this shown at DEBUG as normal startup)"
                ),
                None,
            )
        return True

    def _joining(self, cluster: str, group: str | None) -> bool:
        """Whether the group named (or, when none is, any group on the cluster) has yet to join."""
        if group is not None:
            return (cluster, group) not in self._joined
        waiting = self._groups.get(cluster, frozenset()) - {g for c, g in self._joined if c == cluster}
        return bool(waiting) or cluster not in self._groups
