"""The App: settings, routes, producers and the lifecycle that runs them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import anyio

from aiostream_kafka.admin.check import check_clusters_and_topics
from aiostream_kafka.admin.registry import AdminRegistry
from aiostream_kafka.contracts.app import check_cluster_choices, check_settings, declared_clusters
from aiostream_kafka.errors import NotRunningError, ShutdownError
from aiostream_kafka.instrumentation.logging import LoggingListener
from aiostream_kafka.instrumentation.monitor import Monitor
from aiostream_kafka.instrumentation.opentelemetry import OpenTelemetryListener
from aiostream_kafka.jobs.registry import Jobs
from aiostream_kafka.probes.health import Health
from aiostream_kafka.producing.declared import ProducedTopics
from aiostream_kafka.producing.producer import Producer
from aiostream_kafka.producing.registry import ProducerRegistry
from aiostream_kafka.replication.replicas import Replicas
from aiostream_kafka.replication.status import replication_status
from aiostream_kafka.routing.declared import Topics
from aiostream_kafka.routing.route import Handler
from aiostream_kafka.routing.routes import Routes
from aiostream_kafka.routing.topology import Topology, build_topology
from aiostream_kafka.runtime.backoff import Backoff
from aiostream_kafka.runtime.clients import KafkaClients
from aiostream_kafka.runtime.clock import Clock
from aiostream_kafka.runtime.context import RuntimeContext
from aiostream_kafka.runtime.in_hand import InHand
from aiostream_kafka.runtime.listener import Listener
from aiostream_kafka.runtime.reachability import Outages
from aiostream_kafka.runtime.signals import StopSignals
from aiostream_kafka.runtime.startup_noise import StartupNoise
from aiostream_kafka.runtime.supervisor import Supervisor
from aiostream_kafka.runtime.watchdog import LoopWatchdog
from aiostream_kafka.web.web import Web

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from aiostream_kafka.routing.routes import RouteOptions
    from aiostream_kafka.testing.harness import TestApp

State = Literal["idle", "starting", "running", "stopping", "stopped"]

#: After cancelling what outlived ``shutdown_timeout``: how long the listeners may take to end
#: (the cancelled handlers unwinding, the last commit, leaving the group; well under a second
#: normally) before ``stop()`` gives up on them. The CLI's worker margin leaves room for it.
CANCEL_GRACE = 5.0
#: Then, how long leaving the group may take: one request, so that the partitions of the
#: handlers given up on go to another member (their task would hold them for ever).
LEAVE_TIMEOUT = 2.0


#: How long a failing batch waits before it is tried again, for routes without a ``Retry``.
DEFAULT_RETRY_BACKOFF = Backoff(initial=1.0, maximum=30.0)


class App:
    """A Kafka application: where routes are declared and from where they run.

    ``kafka`` is the primary cluster's settings; ``clusters`` names the others. Without
    ``kafka``, ``primary`` names which of ``clusters`` is the primary. Events are logged
    (``log_events``) and traced and measured through OpenTelemetry (``opentelemetry``: True
    for the global providers, an ``OpenTelemetryListener`` for your own, False for none).
    A batch whose handler has run ``slow_batch_after`` seconds is reported (``batch.slow``)
    and its partition set aside, so that its listener's other partitions keep flowing.
    A handler that blocks the event loop longer than ``loop_block_threshold`` seconds is
    reported (``loop.blocked``, naming it; None: not watched).
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
        retry_backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        producer_format: str = "json",
        log_events: bool = True,
        opentelemetry: bool | OpenTelemetryListener = True,
        auto_create_topics: bool = False,
        jobs_cluster: str | None = None,
        loop_block_threshold: float | None = 1.0,
    ) -> None:
        check_settings(
            name=name,
            concurrency=concurrency,
            seconds={"shutdown_timeout": shutdown_timeout, "revoke_timeout": revoke_timeout},
            optional_seconds={
                "statistics_interval": statistics_interval,
                "slow_batch_after": slow_batch_after,
                "loop_block_threshold": loop_block_threshold,
            },
            backoffs={"restart_backoff": restart_backoff, "retry_backoff": retry_backoff},
            producer_format=producer_format,
        )
        self._primary, self._named = declared_clusters(kafka, clusters or {}, primary)
        cluster_names = (self._primary.name, *self._named)
        check_cluster_choices(cluster_names, producer_cluster=producer_cluster, jobs_cluster=jobs_cluster)
        self.name = name
        self.group_id = group_id or name
        self.concurrency = concurrency
        self.shutdown_timeout = shutdown_timeout
        self.revoke_timeout = revoke_timeout
        self.statistics_interval = statistics_interval
        self.slow_batch_after = slow_batch_after
        self.loop_block_threshold = loop_block_threshold
        self.restart_backoff = restart_backoff
        self.retry_backoff = retry_backoff
        self.producer_format = producer_format
        self.auto_create_topics = auto_create_topics
        self._producer_cluster = producer_cluster
        self.routes = Routes(clusters=cluster_names)
        self.topics = Topics(primary=self._primary.name, clusters=cluster_names)
        self.jobs = Jobs(self, cluster=jobs_cluster, clusters=cluster_names)
        #: ``app.web.enable()``: report status for the Web UI; ``app.web.asgi()``: the UI itself.
        self.web = Web(self, clusters=cluster_names)
        #: ``app.replicas.declare("dr", of="primary")``: MirrorMaker replicas, for failover.
        self.replicas = Replicas(clusters=cluster_names)
        #: ``@app.job(topic="jobs.default")``: declare a background job (see ``app.jobs``).
        self.job = self.jobs.job
        self.produced = ProducedTopics(
            cluster=producer_cluster or self._primary.name, format=producer_format, clusters=cluster_names
        )
        #: ``app.produces("orders.shipped", payload=Shipped)``: what the app sends (``asyncapi``).
        self.produces = self.produced.declare
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
        #: Liveness and readiness (``/livez``, ``/readyz``: ``aiostream-kafka run --health``).
        self.health = Health(self.monitor)
        self._topology: Topology | None = None
        self._producers: ProducerRegistry | None = None
        self._admin: AdminRegistry | None = None
        self._supervisor: Supervisor | None = None
        self._watchdog: LoopWatchdog | None = None
        self._outages = Outages({}, self.monitor)
        self._startup_noise = StartupNoise({})
        self._task: asyncio.Task[None] | None = None
        self._ended = anyio.Event()
        self._now = False  # stop_now(): skip the wait for batches in hand
        self._draining: anyio.CancelScope | None = None
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
            self.web.check_reporting_cluster([self._primary.name, *self._named])
            topology = build_topology(
                primary=self._primary,
                named=self._named,
                routes=list(self.routes),
                default_group_id=self.group_id,
                producer_cluster=self._producer_cluster,
                declarations=list(self.topics),
            )
            self.jobs.check_clusters(topology)
            self.replicas.routed = topology  # as declared: what failover translates
            if self.replicas.failed_over:  # each failed cluster's share moved to its replica
                topology = self.replicas.move_clusters(
                    build_topology(
                        primary=self._primary,
                        named=self._named,
                        routes=self.replicas.move_routes(list(self.routes), self._primary.name),
                        default_group_id=self.group_id,
                        producer_cluster=self._producer_cluster,
                        declarations=self.replicas.move_declarations(
                            list(self.topics),
                            own=(self.web.reports_topic, self.web.errors_topic) if self.web.enabled else (),
                        ),
                    )
                )
            self.replicas.freeze()
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
            self._admin = AdminRegistry(self.topology, client_id=f"{self.name}-admin", clients=self.clients)
        return self._admin

    async def check(self, *, within: float = 10.0) -> list[str]:
        """Each cluster answers within ``within`` seconds; each routed and dead-letter topic exists
        on its own cluster. Raises ``CheckError`` listing every problem. With
        ``auto_create_topics`` declared topics that are missing are created instead (returned
        as notes). Each declared replica's lag and checkpoint freshness is a note too."""
        async with AdminRegistry(
            self.topology, client_id=f"{self.name}-check", timeout=within, clients=self.clients
        ) as admins:
            notes = await check_clusters_and_topics(
                self.topology,
                admins,
                within=within,
                auto_create=self.auto_create_topics,
                clients=self.clients,
                client_id=self.name,
            )
        # each replica's lag and whether its checkpoints would do for a failover now
        return notes + [status.line() for status in await replication_status(self, within=within)]

    # --- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect producers and start one listener per subscription group; returns at once."""
        if self.state not in ("idle", "stopped"):
            raise NotRunningError(f"the app is already {self.state}; stop it before starting it again")
        topology = self.topology
        self.state = "starting"
        self._ended = anyio.Event()
        self._now = False
        self.failure = None
        self._startup_noise = StartupNoise(_group_ids(topology))
        self._startup_noise.install(self.monitor)
        self._outages = Outages(topology.clusters, self.monitor)
        self._outages.install()
        self._producers = ProducerRegistry(
            topology,
            self.monitor,
            client_id=self.name,
            format=self.producer_format,
            clients=self.clients,
            clock=self.clock,
        )
        await self._producers.start()
        context = RuntimeContext(
            clients=self.clients,
            producers=self._producers,
            monitor=self.monitor,
            clock=self.clock,
            client_id=self.name,
            concurrency=self.concurrency,
            retry_backoff=self.retry_backoff,
            revoke_timeout=self.revoke_timeout,
            statistics_interval=self.statistics_interval,
            slow_batch_after=self.slow_batch_after,
            listeners=len(topology.subscription_groups),
        )
        listeners = [Listener(group, context) for group in topology.subscription_groups]
        self._supervisor = Supervisor(listeners, self.monitor, self.restart_backoff)
        self._task = asyncio.create_task(self._supervisor.run(), name=f"{self.name} supervisor")
        self._task.add_done_callback(self._supervisor_ended)
        if self.loop_block_threshold is not None:
            self._watchdog = LoopWatchdog(
                self.monitor,
                self._supervisor.in_hand,
                cluster=topology.primary.name,
                threshold=self.loop_block_threshold,
            )
            self._watchdog.start()
        self.health.attach(topology, self._producers, self._watchdog)
        self.jobs.start_schedules()
        await self.web.start_reporting()
        self.state = "running"
        self.monitor.emit(
            "app.started",
            cluster=topology.primary.name,
            clusters=list(topology.clusters),
            subscription_groups=[group.id for group in topology.subscription_groups],
        )

    def _supervisor_ended(self, task: asyncio.Task[None]) -> None:
        if task is not self._task:  # one a stop gave up on, ending after all: the app has moved on
            return
        self._ended.set()
        if not task.cancelled() and task.exception() is not None:
            self.failure = _unwrap(task.exception())
            self.monitor.emit("error.occurred", cluster=self._primary.name, type="fatal", error=self.failure)

    async def stop(self) -> None:
        """Stop fetching, let batches in hand finish (up to ``shutdown_timeout``), commit, flush producers.

        What is still in hand then is cancelled and left uncommitted (``app.stopped`` lists it
        as ``abandoned``). Handlers that ignore the cancellation too are given up on after
        ``CANCEL_GRACE`` seconds: the app is stopped all the same (the consumers leave their
        groups, so that those partitions go to another member; producers closed), and
        ``ShutdownError`` names them; they may still run, so the process should end.
        """
        if self.state != "running":
            return
        self.state = "stopping"
        primary = self._primary.name
        self.monitor.emit("app.stopping", cluster=primary)
        assert self._supervisor is not None
        assert self._producers is not None
        self._supervisor.request_stop()
        with anyio.move_on_after(self.shutdown_timeout) as self._draining:
            if self._now:
                self._draining.cancel()
            await self._ended.wait()
        self._draining = None
        abandoned: list[InHand] = []
        failure: ShutdownError | None = None
        if not self._ended.is_set():
            abandoned = self._supervisor.in_hand()
            assert self._task is not None
            self._task.cancel()
            with anyio.move_on_after(CANCEL_GRACE):
                await self._ended.wait()
            if not self._ended.is_set():
                failure = self._gave_up(self._supervisor.in_hand())
                with anyio.move_on_after(LEAVE_TIMEOUT):
                    await self._supervisor.leave()
        with anyio.CancelScope(shield=True):
            await self.jobs.stop_schedules()
            await self.web.stop_reporting()
            await self._producers.stop()
            if self._admin is not None:
                await self._admin.close()
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        self._outages.uninstall()
        self._startup_noise.uninstall()
        self.state = "stopped"
        self.monitor.emit("app.stopped", cluster=primary, abandoned=sorted({_name(b) for b in abandoned}))
        if failure is not None:
            raise failure

    def stop_now(self) -> None:
        """Cut a stop short (or the next one): cancel the batches in hand at once instead of
        waiting up to ``shutdown_timeout``. What a second SIGINT/SIGTERM does in ``serve()``."""
        self._now = True
        if self._draining is not None:
            self._draining.cancel()

    def _gave_up(self, stuck: list[InHand]) -> ShutdownError:
        """Report the handlers that would not stop, and make the app's loop forget their task."""
        handlers = [batch.describe() for batch in stuck]
        waited = f"{CANCEL_GRACE:g}s after shutdown_timeout ({self.shutdown_timeout:g}s) cancelled them"
        if handlers:
            message = (
                f"{len(handlers)} handler(s) ignored cancellation (do they swallow CancelledError?), still "
                f"running {waited}; gave up on them, uncommitted: {'; '.join(handlers)}"
            )
        else:
            message = f"the listeners had not ended {waited}: the last commit or leaving the group is stuck"
        failure = ShutdownError(message, gave_up=True, handlers=handlers)
        self.failure = failure
        self._task = None  # its late end, if it ever comes, must not end a later run
        self.monitor.emit(
            "error.occurred",
            cluster=self._primary.name,
            type="shutdown.timeout",
            handlers=handlers,
            error=failure,
        )
        return failure

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
        """Run until SIGINT or SIGTERM, then stop gracefully (the CLI's ``run``).

        This owns the process: if the stop gives up on handlers that ignore cancellation,
        the process exits with status 1 (see ``exit_if_given_up``)."""
        anyio.run(exit_if_given_up, self.serve, backend="asyncio")

    async def serve(self) -> None:
        """``run()`` inside an event loop that is already running: until SIGINT or SIGTERM, or
        until a fatal error ends the Supervisor (then re-raised). Another signal during the
        stop cuts it short (``stop_now``) and raises ``ShutdownError``. A CLI worker process
        runs this next to its heartbeat, so that the heartbeat comes from the loop the app uses."""
        signals = StopSignals(on_repeat=lambda _signal: self.stop_now())
        failure: BaseException | None = None
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            async with anyio.create_task_group() as watching:
                watching.start_soon(signals.watch, received)
                try:
                    async with self.running(), anyio.create_task_group() as waiting:

                        async def until(event: anyio.Event) -> None:
                            await event.wait()
                            waiting.cancel_scope.cancel()

                        waiting.start_soon(until, signals.requested)
                        waiting.start_soon(until, self._ended)
                except ShutdownError as error:  # raised here, it would reach the caller in a group
                    failure = error
                watching.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if signals.repeated is not None:
            raise ShutdownError(f"stopped at once on a second {signals.repeated.name}", gave_up=False)
        if self.failure is not None:
            raise self.failure


async def exit_if_given_up(serve: Callable[[], Awaitable[None]]) -> None:
    """Await ``serve()``; if its stop gave up on handlers that ignore cancellation, end the
    process here, with status 1, once the reason is written.

    Deliberately ``os._exit``, from inside the loop: ``asyncio.run`` cancels and waits for
    every task before it returns, and would wait for those for ever (as would interpreter
    exit for a thread they block). The app has already closed its producers; what those
    handlers hold is uncommitted, so it is delivered again to the partitions' next owner.
    """
    try:
        await serve()
    except ShutdownError as error:
        if not error.gave_up:
            raise
        print(f"error: {error}", file=sys.stderr)
        logging.shutdown()  # flush every handler: os._exit skips it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _name(batch: InHand) -> str:
    return f"{batch.topic}/{batch.partition}"


def _unwrap(error: BaseException | None) -> BaseException | None:
    """The one error inside (nested) task-group exception groups, so users see the real thing."""
    while error is not None and len(getattr(error, "exceptions", ())) == 1:
        error = error.exceptions[0]  # type: ignore[attr-defined]
    return error


def _group_ids(topology: Topology) -> dict[str, set[str]]:
    """Each cluster's consumer group ids: their coordinator lines are startup noise until they join."""
    groups: dict[str, set[str]] = {}
    for group in topology.subscription_groups:
        groups.setdefault(group.cluster, set()).add(group.group_id)
    return groups
