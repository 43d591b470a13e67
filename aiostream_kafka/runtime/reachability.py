"""Whether each cluster can be reached: one event when it goes away, one when it is back.

While a cluster is down, aiokafka logs an ERROR for every failed connection attempt of every
client (hundreds of lines a minute for one app), naming a host and port but never the
cluster, and a consumer simply waits, saying nothing of it. ``Outages``
reads aiokafka's warnings and errors as they are logged and puts the cluster's name in each.
One that says a connection failed marks the cluster away (``cluster.unreachable``, with that
line) and starts a probe that asks the cluster every few seconds until it answers
(``cluster.reachable``, with how long it was away). Meanwhile at most one line of each kind
about it is let through every ``quiet`` seconds, saying how many were held back.

Most of aiokafka's lines name no address at all ("Failed fetch messages from 1": a node id,
and every single-node cluster's node is 1), so a line's cluster is the one whose client wrote
it: ``CLIENT_CLUSTER``, a context variable each Listener and Producer sets before it starts
its aiokafka client, whose background tasks inherit it. A line from elsewhere counts when it
names a cluster's bootstrap server (``"host:port"`` or ``('host', port)``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from aiostream_kafka.config import Cluster
from aiostream_kafka.diagnosis import likely_reason
from aiostream_kafka.instrumentation.monitor import Monitor

#: Seconds between two lines of one kind from aiokafka about a cluster that is away.
QUIET = 30.0
#: Seconds between probes of a cluster that is away (doubling up to PROBE_MAX).
PROBE_EVERY, PROBE_MAX = 1.0, 5.0
#: What aiokafka's lines about a failed connection say (others are other news).
CONNECTION_FAILED = re.compile(
    r"unable connect|unable to bootstrap|connect call failed|not ready|unable to update metadata|"
    r"errno|refused|closed",
    re.I,
)

#: The cluster whose aiokafka client is running in this context (see the module's docstring).
CLIENT_CLUSTER: ContextVar[str | None] = ContextVar("aiostream_kafka_client_cluster", default=None)


@contextmanager
def client_of(cluster: str) -> Iterator[None]:
    """Start an aiokafka client inside this block, so that its tasks say whose they are."""
    token = CLIENT_CLUSTER.set(cluster)
    try:
        yield
    finally:
        CLIENT_CLUSTER.reset(token)


class Outages(logging.Filter):
    def __init__(self, clusters: Mapping[str, Cluster], monitor: Monitor, *, quiet: float = QUIET) -> None:
        super().__init__()
        self._monitor = monitor
        self._quiet = quiet
        self._clusters = dict(clusters)
        self._addresses: list[tuple[tuple[str, ...], str]] = []
        for name, cluster in clusters.items():
            for server in cluster.settings.bootstrap_servers:
                host, _, port = server.rpartition(":")
                self._addresses.append(((f"{host}:{port}", f"'{host}', {port})"), name))
        self._away: dict[str, float] = {}  # cluster -> since (monotonic)
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._held: dict[tuple[str, object, str], tuple[float, int]] = {}  # kind -> (last shown, held back)
        self._loggers: list[logging.Logger] = []

    # --- installing ----------------------------------------------------------------------

    def install(self) -> None:
        """Filter every aiokafka logger (a filter on a parent does not see its children's records)."""
        names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "aiokafka"]
        self._loggers = [logging.getLogger(name) for name in sorted({"aiokafka", *names})]
        for logger in self._loggers:
            logger.addFilter(self)

    def uninstall(self) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)
        for probe in self._probes.values():
            probe.cancel()
        self._probes.clear()

    # --- reading aiokafka's lines --------------------------------------------------------

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        cluster = CLIENT_CLUSTER.get()
        if cluster not in self._clusters:
            cluster = next((name for forms, name in self._addresses if any(f in text for f in forms)), None)
        if cluster is None:
            return True
        if cluster not in self._away and CONNECTION_FAILED.search(text):
            self._went_away(cluster, text)
        if cluster not in self._away:
            record.msg, record.args = f"[cluster {cluster!r}] {text}", None
            return True
        kind = (record.name, record.msg, cluster)
        now = time.monotonic()
        shown, held = self._held.get(kind, (0.0, 0))
        if now - shown < self._quiet:
            self._held[kind] = (shown, held + 1)
            return False
        self._held[kind] = (now, 0)
        note = f" ({held} like it held back in the last {self._quiet:g}s)" if held else ""
        record.msg, record.args = f"[cluster {cluster!r}] {text}{note}", None
        return True

    def _went_away(self, cluster: str, text: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # logged outside the app's loop (another thread): the loop's own lines will do
        self._away[cluster] = time.monotonic()
        self._monitor.emit("cluster.unreachable", cluster=cluster, reason=text)
        self._probes[cluster] = loop.create_task(self._probe(cluster), name=f"probe {cluster}")

    async def _probe(self, cluster: str) -> None:
        delay = PROBE_EVERY
        while True:
            await asyncio.sleep(delay)
            reason = await likely_reason(self._clusters[cluster], within=min(delay, PROBE_MAX))
            if not reason.away:
                break
            delay = min(delay * 2, PROBE_MAX)
        since = self._away.pop(cluster)
        self._probes.pop(cluster, None)
        for kind in [kind for kind in self._held if kind[2] == cluster]:
            del self._held[kind]
        self._monitor.emit("cluster.reachable", cluster=cluster, away_for=round(time.monotonic() - since, 1))
