"""``app.health``: whether this process is alive, and whether it is ready, from Monitor events.

Two questions an orchestrator asks, with different consequences, so they are kept apart:

- **Live** fails only when the process itself is stuck, because the answer to a failed
  liveness probe is a restart: its event loop has not run for ``STUCK_AFTER`` seconds (a
  handler blocking it; the loop watchdog names which), or the Supervisor ended on a fatal
  error or gave up on a stop. A cluster that is down is *not* a reason: a restart would not
  bring it back, and the other clusters' routes keep consuming meanwhile.
- **Ready** fails whenever the app is not doing all of its work: it has not started, a
  listener has not joined its group (or crashed and waits to restart), a producer is not
  connected, or a cluster is unreachable, and then the answer names the cluster and the
  routes it holds up.

The verdicts are read from the probe server's thread (``probes/server.py``), so that a
blocked loop can still be reported as such; the state they read is changed on the loop,
under a lock, only by events that are rare (joins, crashes, outages), never per message.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiostream_kafka.errors import ClusterUnreachableError
from aiostream_kafka.instrumentation.monitor import Monitor, MonitorEvent
from aiostream_kafka.probes.verdict import Verdict

if TYPE_CHECKING:
    from aiostream_kafka.probes.metrics import AppMetrics
    from aiostream_kafka.producing.producer import Producer
    from aiostream_kafka.routing.topology import SubscriptionGroup, Topology
    from aiostream_kafka.runtime.watchdog import LoopWatchdog

#: A loop that has not run for this long is stuck, not busy: it is aiokafka's default
#: ``session_timeout_ms`` (10 s), past which the group has already given this process's
#: partitions to another member, since the loop sends the heartbeats too.
STUCK_AFTER = 10.0
#: How often the loop notes that it runs (seconds): the resolution of ``STUCK_AFTER``.
TICK = 0.5
#: How often a producer that is not connected tries again (seconds). A producer connects on
#: first use otherwise, and one nobody uses would leave the app unready for ever.
RECONNECT_EVERY = 5.0

_EVENTS = (
    "app.started",
    "app.stopping",
    "app.stopped",
    "listener.started",
    "listener.crashed",
    "listener.stopped",
    "partitions.assigned",
    "cluster.unreachable",
    "cluster.reachable",
    "error.occurred",
)


@dataclass(frozen=True)
class ListenerState:
    """Where one subscription group's listener is: ``joining``, ``joined``, ``crashed``, ``stopped``."""

    state: str
    since: float  # monotonic
    error: str | None = None
    restart_in: float | None = None


class LoopTicker:
    """The loop writes down that it ran, every ``TICK`` seconds; any thread reads how long ago."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._last = time.monotonic()
        self._handle = asyncio.get_running_loop().call_later(TICK, self._tick)

    def _tick(self) -> None:
        self._last = time.monotonic()
        self._handle = asyncio.get_running_loop().call_later(TICK, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def silent_for(self) -> float:
        """Seconds since the loop last ran (0 up to ``TICK`` while it runs)."""
        return time.monotonic() - self._last


class Health:
    """Subscribed to the app's Monitor from the start; the App attaches what it runs at ``start()``.

    ``stuck_after``: how long the loop may stand still before liveness fails (``STUCK_AFTER``)."""

    def __init__(self, monitor: Monitor, *, stuck_after: float = STUCK_AFTER) -> None:
        self.stuck_after = stuck_after
        self._monitor = monitor
        self._lock = threading.Lock()
        self._state = "idle"
        self._failure: str | None = None
        self._listeners: dict[tuple[str, str], ListenerState] = {}
        self._away: dict[str, tuple[float, str]] = {}  # cluster -> (since, the last error)
        self._topology: Topology | None = None
        self._producers: Mapping[str, Producer] = {}
        self._watchdog: LoopWatchdog | None = None
        self._ticker = LoopTicker()
        self._connecting: dict[str, asyncio.Task[None]] = {}  # cluster -> its producer connecting
        self._reconnecting: asyncio.TimerHandle | None = None
        self._metrics: AppMetrics | None = None
        for name in _EVENTS:
            monitor.subscribe(name, getattr(self, "_on_" + name.replace(".", "_")))

    @property
    def metrics(self) -> AppMetrics:
        """The app's Prometheus series, counted from the first call on (the ``prometheus`` extra):
        the probe server and the ASGI app ask for them when they are made, before the app starts."""
        if self._metrics is None:
            from aiostream_kafka.probes.metrics import AppMetrics

            self._metrics = AppMetrics(self._monitor, self)
        return self._metrics

    def attach(
        self, topology: Topology, producers: Mapping[str, Producer], watchdog: LoopWatchdog | None
    ) -> None:
        """What this run consists of (``App.start``, on its loop, before ``app.started``)."""
        now = time.monotonic()
        with self._lock:
            self._topology = topology
            self._producers = producers
            self._watchdog = watchdog
            self._state = "starting"
            self._failure = None
            self._away.clear()
            self._listeners = {
                (group.cluster, group.name): ListenerState("joining", now)
                for group in topology.subscription_groups
            }
        self._ticker.start()
        self._reconnecting = asyncio.get_running_loop().call_later(RECONNECT_EVERY, self._reconnect)

    def asgi(self) -> Callable[..., Any]:
        """``/livez``, ``/readyz`` and ``/metrics`` as a plain ASGI app, to mount in the web server
        that runs the app (``api.mount("/health", app.health.asgi())``; see ``probes/asgi.py``)."""
        from aiostream_kafka.probes.asgi import probes_asgi
        from aiostream_kafka.probes.server import AppProbes

        return probes_asgi(AppProbes(self))

    # --- the verdicts (any thread) --------------------------------------------------------

    def liveness(self) -> Verdict:
        with self._lock:
            state, failure, watchdog = self._state, self._failure, self._watchdog
        problems: list[str] = []
        silent = self._ticker.silent_for() if state in ("starting", "running", "stopping") else 0.0
        if failure is not None:
            problems.append(f"the app's supervisor ended: {failure}")
        if silent >= self.stuck_after:
            blocker = watchdog.blocker() if watchdog is not None else None
            where = f", blocked {blocker.describe()}" if blocker is not None else ""
            problems.append(f"the event loop has not run for {silent:.1f}s{where}")
        return Verdict(
            "live", not problems, tuple(problems), {"state": state, "loop_silent_for": round(silent, 3)}
        )

    def readiness(self) -> Verdict:
        now = time.monotonic()
        with self._lock:
            state, topology = self._state, self._topology
            listeners, away = dict(self._listeners), dict(self._away)
            producers = dict(self._producers)
        if state != "running" or topology is None:
            why = "has not started yet" if state in ("idle", "starting") else f"is {state}"
            return Verdict("ready", False, (f"the app {why}",), {"state": state})
        problems: list[str] = []
        clusters: dict[str, dict[str, Any]] = {}
        for name in topology.clusters:
            routes = [
                r for group in topology.subscription_groups if group.cluster == name for r in _route(group)
            ]
            entry: dict[str, Any] = {"reachable": name not in away, "routes": routes}
            if name in away:
                since, reason = away[name]
                entry["unreachable_for"] = round(now - since, 1)
                held = "; ".join(routes) or "no routes (its producer)"
                problems.append(
                    f"cluster {name!r} is unreachable (for {now - since:.0f}s), holding up: {held}; "
                    f"last error: {reason}"
                )
            clusters[name] = entry
        listed = []
        for group in topology.subscription_groups:
            listener = listeners.get((group.cluster, group.name), ListenerState("joining", now))
            listed.append(
                {
                    "cluster": group.cluster,
                    "subscription_group": group.name,
                    "group": group.group_id,
                    "state": listener.state,
                }
            )
            if listener.state != "joined" and group.cluster not in away:
                problems.append(_not_joined(group, listener, now))
        unconnected = sorted(name for name, producer in producers.items() if not producer.connected)
        for name in unconnected:
            if name not in away:
                problems.append(f"the producer of cluster {name!r} is not connected")
        details = {
            "state": state,
            "clusters": clusters,
            "listeners": listed,
            "producers": {name: producer.connected for name, producer in producers.items()},
        }
        return Verdict("ready", not problems, tuple(problems), details)

    # --- the events (the loop) ------------------------------------------------------------

    def _on_app_started(self, event: MonitorEvent) -> None:
        with self._lock:
            self._state = "running"

    def _on_app_stopping(self, event: MonitorEvent) -> None:
        with self._lock:
            self._state = "stopping"

    def _on_app_stopped(self, event: MonitorEvent) -> None:
        with self._lock:
            self._state = "stopped"
        self._ticker.stop()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            self._reconnecting = None
        for task in list(self._connecting.values()):
            task.cancel()

    def _on_listener_started(self, event: MonitorEvent) -> None:
        # aiokafka's start() usually waits for the first assignment: joined already, then.
        key = _listener(event)
        with self._lock:
            if key in self._listeners and self._listeners[key].state != "joined":
                self._listeners[key] = ListenerState("joining", time.monotonic())

    def _on_partitions_assigned(self, event: MonitorEvent) -> None:
        # Joined: a rebalance that assigns nothing (more members than partitions) counts too.
        self._set_listener(event, ListenerState("joined", time.monotonic()))
        self._answered(event.get("cluster"))

    def _on_listener_crashed(self, event: MonitorEvent) -> None:
        error = event.get("error")
        described = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
        self._set_listener(
            event, ListenerState("crashed", time.monotonic(), described, event.get("restart_in"))
        )
        self._away_if_unreachable(event)

    def _on_listener_stopped(self, event: MonitorEvent) -> None:
        key = _listener(event)
        with self._lock:  # a crash reports a stop first: keep the crash, it says more
            if key in self._listeners and self._listeners[key].state != "crashed":
                self._listeners[key] = ListenerState("stopped", time.monotonic())

    def _on_cluster_unreachable(self, event: MonitorEvent) -> None:
        self._away_since(event.get("cluster"), str(event.get("reason", "")), replace=True)

    def _on_cluster_reachable(self, event: MonitorEvent) -> None:
        self._answered(event.get("cluster"))

    def _on_error_occurred(self, event: MonitorEvent) -> None:
        if event.get("type") in ("fatal", "shutdown.timeout"):
            with self._lock:
                self._failure = f"{event.get('type')}: {event.get('error')}"
        elif event.get("type") == "producer.connect":
            self._away_if_unreachable(event)

    def _away_if_unreachable(self, event: MonitorEvent) -> None:
        """A cluster down when the app started: its clients fail to connect (the listener
        crashes, the producer waits), which aiokafka does not always log as an outage."""
        if isinstance(event.get("error"), ClusterUnreachableError):
            self._away_since(event.get("cluster"), str(event["error"]), replace=False)

    def _away_since(self, cluster: object, reason: str, *, replace: bool) -> None:
        with self._lock:
            if self._topology is None or cluster not in self._topology.clusters:
                return  # not this app's run (an event emitted before it started)
            assert isinstance(cluster, str)
            if replace or cluster not in self._away:
                self._away[cluster] = (time.monotonic(), reason)

    def _answered(self, cluster: object) -> None:
        """The cluster is back (its probe answered, a listener joined, its producer connected)."""
        if not isinstance(cluster, str):
            return
        with self._lock:
            self._away.pop(cluster, None)
        self._connect_producer(cluster)

    def _set_listener(self, event: MonitorEvent, state: ListenerState) -> None:
        key = _listener(event)
        with self._lock:
            if key in self._listeners:  # one of this run's (attach lists them)
                self._listeners[key] = state

    def _reconnect(self) -> None:
        for cluster in self._producers:
            self._connect_producer(cluster)
        self._reconnecting = asyncio.get_running_loop().call_later(RECONNECT_EVERY, self._reconnect)

    def _connect_producer(self, cluster: str) -> None:
        """A producer whose cluster was down at start connects on first use; one nobody uses
        would stay unconnected (and the app unready) for ever, so it is connected here, once
        its cluster is seen again and every ``RECONNECT_EVERY`` seconds meanwhile."""
        producer = self._producers.get(cluster)
        if producer is None or producer.connected or self._state != "running" or cluster in self._connecting:
            return
        task = asyncio.get_running_loop().create_task(self._connect(cluster, producer))
        self._connecting[cluster] = task

    async def _connect(self, cluster: str, producer: Producer) -> None:
        try:
            await producer.start()
        except Exception:  # still away: readiness says so, and the next try comes
            return
        finally:
            self._connecting.pop(cluster, None)
        self._answered(cluster)


def _listener(event: MonitorEvent) -> tuple[str, str]:
    return (str(event.get("cluster")), str(event.get("subscription_group")))


def _route(group: SubscriptionGroup) -> list[str]:
    return [f"{topic.name} ({topic.route.handler_name})" for topic in group.topics]


def _not_joined(group: SubscriptionGroup, listener: ListenerState, now: float) -> str:
    topics = ", ".join(topic.name for topic in group.topics)
    whose = f"the listener of {topics} on cluster {group.cluster!r} (group {group.group_id!r})"
    if listener.state == "crashed":
        again = f"; restarting in {listener.restart_in:g}s" if listener.restart_in is not None else ""
        return f"{whose} crashed {now - listener.since:.0f}s ago ({listener.error}){again}"
    if listener.state == "stopped":
        return f"{whose} has stopped"
    return f"{whose} has not joined its group yet (for {now - listener.since:.0f}s)"
