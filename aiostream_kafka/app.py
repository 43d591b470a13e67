"""The App: settings, routes, producers and the lifecycle that runs them."""

from __future__ import annotations

import asyncio
import math
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import anyio

from aiostream_kafka.admin.check import check
from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.codecs import FORMATS
from aiostream_kafka.config import Cluster, KafkaSettings, check_cluster_name
from aiostream_kafka.errors import ConfigError, NotRunningError
from aiostream_kafka.instrumentation.logging import LoggingListener
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.instrumentation.opentelemetry import OpenTelemetryListener
from aiostream_kafka.jobs.registry import Jobs
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.producing.registry import ProducerRegistry
from aiostream_kafka.routing.declared import Topics
from aiostream_kafka.routing.route import Handler
from aiostream_kafka.routing.routes import Routes
from aiostream_kafka.routing.topology import Topology, build_topology
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.clients import KafkaClients
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.listener import Listener
from aiostream_kafka.runtime.reachability import Outages
from aiostream_kafka.runtime.supervisor import Supervisor
from aiostream_kafka.web.web import Web

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from aiostream_kafka.routing.routes import RouteOptions
    from aiostream_kafka.testing.harness import TestApp

State = Literal["idle", "starting", "running", "stopping", "stopped"]


class App:
    """A Kafka application: where routes are declared and from where they run.

    ``kafka`` is the primary cluster's settings; ``clusters`` names the others. Without
    ``kafka``, ``primary`` names which of ``clusters`` is the primary. Events are logged
    (``log_events``) and traced and measured through OpenTelemetry (``opentelemetry``: True
    for the global providers, an ``OpenTelemetryListener`` for your own, False for none).
    A batch whose handler has run ``slow_batch_after`` seconds is reported (``batch.slow``)
    and its partition set aside, so that its listener's other partitions keep flowing.
    """

    def __init__(
        self,
        name: str = "aiostream-kafka",
        *,
        kafka: Mapping[str, Any] | None = None,
        clusters: Mapping[str, Mapping[str, Any]] | None = None,
        primary: str = "primary",
        producer_cluster: str | None = None,
        group_id: str | None = None,
        concurrency: int = 4,
        shutdown_timeout: float = 30.0,
        revoke_timeout: float = 10.0,
        statistics_interval: float | None = 5.0,
        slow_batch_after: float | None = 30.0,
        restart_backoff: Backoff = Backoff(initial=0.5, maximum=30.0),
        retry_backoff: Backoff = Backoff(initial=1.0, maximum=30.0),
        producer_format: str = "json",
        log_events: bool = True,
        opentelemetry: bool | OpenTelemetryListener = True,
        auto_create_topics: bool = False,
        jobs_cluster: str | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ConfigError(
                "App(name=...) must be a non-empty string; it is the default client and group id"
            )
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"App(concurrency=...) must be a positive integer, not {concurrency!r}")
        for setting, seconds, optional in (
            ("shutdown_timeout", shutdown_timeout, False),
            ("revoke_timeout", revoke_timeout, False),
            ("statistics_interval", statistics_interval, True),
            ("slow_batch_after", slow_batch_after, True),
        ):
            if not (optional and seconds is None) and not _positive_seconds(seconds):
                allowed = "positive seconds or None" if optional else "positive seconds"
                raise ConfigError(f"App({setting}=...) must be {allowed}, not {seconds!r}")
        if producer_format not in FORMATS:
            raise ConfigError(
                f"App(producer_format=...) must be one of {', '.join(FORMATS)}, not {producer_format!r}"
            )
        self.name = name
        self.group_id = group_id or name
        self.concurrency = concurrency
        self.shutdown_timeout = shutdown_timeout
        self.revoke_timeout = revoke_timeout
        self.statistics_interval = statistics_interval
        self.slow_batch_after = slow_batch_after
        self.restart_backoff = restart_backoff
        self.retry_backoff = retry_backoff
        self.producer_format = producer_format
        self.auto_create_topics = auto_create_topics
        self._producer_cluster = producer_cluster
        self._primary, self._named = _clusters(kafka, clusters or {}, primary)
        self.routes = Routes()
        self.topics = Topics()
        self.jobs = Jobs(self, cluster=jobs_cluster)
        #: ``app.web.enable()``: report status for the Web UI; ``app.web.asgi()``: the UI itself.
        self.web = Web(self)
        #: ``@app.job(topic="jobs.default")``: declare a background job (see ``app.jobs``).
        self.job = self.jobs.job
        self.monitor = Monitor()
        #: Where Kafka clients and the time come from; the testing harness swaps both.
        self.clients = KafkaClients()
        self.clock = Clock()
        if log_events:
            LoggingListener().install(self.monitor)
        if opentelemetry:
            telemetry = (
                opentelemetry if isinstance(opentelemetry, OpenTelemetryListener) else OpenTelemetryListener()
            )
            telemetry.install(self.monitor)
        self._topology: Topology | None = None
        self._producers: ProducerRegistry | None = None
        self._admin: AdminRegistry | None = None
        self._supervisor: Supervisor | None = None
        self._outages = Outages({}, self.monitor)
        self._task: asyncio.Task[None] | None = None
        self._ended = anyio.Event()
        #: A fatal error (MemoryError, ...) that ended the Supervisor; ``run()`` re-raises it.
        self.failure: BaseException | None = None
        self.state: State = "idle"

    # --- declaring -----------------------------------------------------------------------

    def route(self, topic: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        """Decorate an ``async def handler(messages)`` to consume ``topic`` in batches."""

        def register(handler: Handler) -> Handler:
            self.routes.topic(topic, handler=handler, **options)
            return handler

        return register

    @property
    def topology(self) -> Topology:
        """Clusters, subscription groups and topics, validated; building it freezes the routes."""
        if self._topology is None:
            self.web.check([self._primary.name, *self._named])
            topology = build_topology(
                primary=self._primary,
                named=self._named,
                routes=list(self.routes),
                default_group_id=self.group_id,
                producer_cluster=self._producer_cluster,
                declarations=list(self.topics),
            )
            self.jobs.check(topology)
            self._topology = topology
            self.routes.freeze("the app's topology is already built (routes are fixed once the app starts)")
        return self._topology

    # --- producing -----------------------------------------------------------------------

    @property
    def producers(self) -> ProducerRegistry:
        """Every cluster's producer by name (``app.producers["analytics"]``)."""
        if self._producers is None:
            raise NotRunningError(
                "producers exist while the app runs: await app.start(), use async with app.running(), "
                "or FastAPI(lifespan=app.lifespan)"
            )
        return self._producers

    @property
    def producer(self) -> Producer:
        """The primary producer: the primary cluster's, unless ``producer_cluster`` says otherwise."""
        return self.producers.primary

    # --- administering ---------------------------------------------------------------------

    @property
    def admin(self) -> AdminRegistry:
        """Administration of every cluster: the primary's by default (``await app.admin.list_topics()``),
        any by name (``app.admin.cluster("analytics")``). Needs no running app; closed by ``stop()``."""
        if self._admin is None:
            self._admin = AdminRegistry(self.topology, client_id=f"{self.name}-admin")
        return self._admin

    async def check(self, *, within: float = 10.0) -> list[str]:
        """Each cluster answers within ``within`` seconds; each routed and dead-letter topic exists
        on its own cluster. Raises ``CheckError`` listing every problem. With
        ``auto_create_topics`` declared topics that are missing are created instead (returned
        as notes)."""
        async with AdminRegistry(self.topology, client_id=f"{self.name}-check", timeout=within) as admins:
            return await check(self.topology, admins, within=within, auto_create=self.auto_create_topics)

    # --- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect producers and start one listener per subscription group; returns at once."""
        if self.state not in ("idle", "stopped"):
            raise NotRunningError(f"the app is already {self.state}; stop it before starting it again")
        topology = self.topology
        self.state = "starting"
        self._ended = anyio.Event()
        self.failure = None
        self._outages = Outages(topology.clusters, self.monitor)
        self._outages.install()
        self._producers = ProducerRegistry(
            topology, self.monitor, client_id=self.name, format=self.producer_format, clients=self.clients
        )
        await self._producers.start()
        listeners = [
            Listener(
                group,
                self,
                self.monitor,
                client_id=self.name,
                concurrency=self.concurrency,
                retry_backoff=self.retry_backoff,
                revoke_timeout=self.revoke_timeout,
                statistics_interval=self.statistics_interval,
                slow_batch_after=self.slow_batch_after,
            )
            for group in topology.subscription_groups
        ]
        self._supervisor = Supervisor(listeners, self.monitor, self.restart_backoff)
        self._task = asyncio.create_task(self._supervisor.run(), name=f"{self.name} supervisor")
        self._task.add_done_callback(self._supervisor_ended)
        await self.web.start_reporting()
        self.state = "running"
        self.monitor.emit(
            "app.started",
            cluster=topology.primary.name,
            clusters=list(topology.clusters),
            subscription_groups=[group.id for group in topology.subscription_groups],
        )

    def _supervisor_ended(self, task: asyncio.Task[None]) -> None:
        self._ended.set()
        if not task.cancelled() and task.exception() is not None:
            self.failure = _unwrap(task.exception())
            self.monitor.emit("error.occurred", cluster=self._primary.name, type="fatal", error=self.failure)

    async def stop(self) -> None:
        """Stop fetching, let batches in hand finish (up to ``shutdown_timeout``), commit, flush producers."""
        if self.state != "running":
            return
        self.state = "stopping"
        primary = self._primary.name
        self.monitor.emit("app.stopping", cluster=primary)
        assert self._supervisor is not None
        assert self._task is not None
        assert self._producers is not None
        self._supervisor.request_stop()
        with anyio.move_on_after(self.shutdown_timeout):
            await asyncio.wait([self._task])
        if not self._task.done():  # the batches in hand took too long: abandon them uncommitted
            self._task.cancel()
            await asyncio.wait([self._task])
        with anyio.CancelScope(shield=True):
            await self.web.stop_reporting()
            await self._producers.stop()
            if self._admin is not None:
                await self._admin.close()
        self._outages.uninstall()
        self.state = "stopped"
        self.monitor.emit("app.stopped", cluster=primary)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[App]:
        """``async with app.running():`` the app runs inside the block and stops gracefully after it."""
        await self.start()
        try:
            yield self
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()

    @asynccontextmanager
    async def lifespan(self, _asgi_app: Any = None) -> AsyncIterator[None]:
        """A FastAPI/Starlette lifespan: ``FastAPI(lifespan=app.lifespan)``, or nest it in your own."""
        async with self.running():
            yield

    def testing(self, **options: Any) -> TestApp:
        """``async with app.testing() as t:`` the app runs on in-memory clusters (see ``TestApp``)."""
        from aiostream_kafka.testing.harness import TestApp

        return TestApp(self, **options)

    def run(self) -> None:
        """Run until SIGINT or SIGTERM, then stop gracefully (the CLI's ``run``)."""
        anyio.run(self.serve, backend="asyncio")

    async def serve(self) -> None:
        """``run()`` inside an event loop that is already running: until SIGINT or SIGTERM, or
        until a fatal error ends the Supervisor (then re-raised). A CLI worker process runs
        this next to its heartbeat, so that the heartbeat comes from the loop the app uses."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with self.running(), anyio.create_task_group() as waiting:

                async def until_signal() -> None:
                    async for _ in signals:
                        break
                    waiting.cancel_scope.cancel()

                async def until_supervisor_ends() -> None:
                    await self._ended.wait()
                    waiting.cancel_scope.cancel()

                waiting.start_soon(until_signal)
                waiting.start_soon(until_supervisor_ends)
        if self.failure is not None:
            raise self.failure


def _clusters(
    kafka: Mapping[str, Any] | None, clusters: Mapping[str, Mapping[str, Any]], primary: str
) -> tuple[Cluster, dict[str, Cluster]]:
    check_cluster_name(primary, "App(primary=...)")
    named = {
        check_cluster_name(name, "App(clusters=...)"): Cluster(
            name, KafkaSettings.parse(settings, where=f"cluster {name!r}")
        )
        for name, settings in clusters.items()
    }
    if kafka is not None:
        return Cluster(primary, KafkaSettings.parse(kafka, where="App(kafka=...)")), named
    if primary in named:
        return named.pop(primary), named
    if named:
        raise ConfigError(
            f"App(primary={primary!r}) names no cluster in clusters= ({', '.join(named)}); "
            f"pass kafka={{...}} for the primary or name one of them"
        )
    raise ConfigError(
        "App needs the primary cluster's settings: App(kafka={'bootstrap_servers': 'host:9092'})"
    )


def _positive_seconds(value: object) -> bool:
    """A finite number of seconds above zero: not nan (which compares false to everything, so
    passed ``<= 0`` and made ``stop()`` raise), not infinity, not a bool or a string."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def _unwrap(error: BaseException | None) -> BaseException | None:
    """The one error inside (nested) task-group exception groups, so users see the real thing."""
    while error is not None and len(getattr(error, "exceptions", ())) == 1:
        error = error.exceptions[0]  # type: ignore[attr-defined]
    return error
