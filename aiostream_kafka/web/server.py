"""The Web UI: a read-only Starlette app over the status board and every cluster's admin.

Pages are rendered on the server with Jinja2, escaping everything; the overview refreshes
its numbers and plots from ``/api/overview`` with a small script that only ever sets text.
Only GET exists, and the content security policy allows no inline script, so an escaped
payload could not run even if escaping failed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from aiostream_kafka.probes.server import PATHS, AppProbes, answer
from aiostream_kafka.probes.verdict import Verdict
from aiostream_kafka.runtime.flow import describe_flow, flow_settings
from aiostream_kafka.web import payloads
from aiostream_kafka.web.auth import HostGuard, TokenGuard
from aiostream_kafka.web.board import StatusBoard

if TYPE_CHECKING:
    from aiostream_kafka.app import App

HERE = Path(__file__).parent
EXPLORER_MAX = 100
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class WebUI:
    """The views; one per app, with the board it keeps current in the background."""

    def __init__(self, app: App, board: StatusBoard) -> None:
        self.app = app
        self.board = board
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["when"] = _when
        self.templates.env.globals["app_name"] = app.name
        self._board_task: asyncio.Task[None] | None = None

    async def ensure_running(self) -> None:
        """Start the board on first use: a mounted app gets no lifespan of its own."""
        if self._board_task is None:
            self._board_task = asyncio.create_task(self.board.run(), name="aiostream-kafka web board")

    async def aclose(self) -> None:
        """Stop reading reports and close admin connections (the lifespan does it when served)."""
        task, self._board_task = self._board_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self.app.admin.close()

    def render(self, request: Request, template: str, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, template, {"now": time.time(), **context})

    # --- pages -----------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        await self.ensure_running()
        return self.render(
            request,
            "overview.html",
            clusters=self.board.clusters(),
            processes=self.board.live(),
            reading=self.board.reading,
            web=self.app.web,
        )

    async def api_overview(self, request: Request) -> Response:
        await self.ensure_running()
        processes = [
            {
                "id": p.id,
                "app": p.app,
                "host": p.host,
                "pid": p.pid,
                "uptime": round(p.reported_at - p.started_at),
                "age": round(time.time() - p.reported_at, 1),
                "messages": sum(ls.messages for ls in p.listeners),
                "errors": sum(ls.errors for ls in p.listeners),
                "rate": round(sum(ls.messages_per_second for ls in p.listeners), 2),
                "partitions": sum(len(ls.partitions) for ls in p.listeners),
            }
            for p in self.board.live()
        ]
        return JSONResponse(
            {"clusters": self.board.clusters(), "processes": processes, "reading": self.board.reading}
        )

    async def cluster(self, request: Request) -> Response:
        """Topics, and the lag of this app's consumer groups; other groups one click away."""
        await self.ensure_running()
        name = self._cluster_named(request.path_params["name"])
        admin = self.app.admin.cluster(name)
        ours = sorted({g.group_id for g in self.app.topology.subscription_groups if g.cluster == name})
        problem = None
        topics: list[Any] = []
        groups: list[Any] = []
        others: list[str] = []
        try:
            with anyio.fail_after(15):
                described = await admin.describe_topics(await admin.list_topics())
                topics = sorted(described.values(), key=lambda t: t.name)
                others = sorted(set(await admin.consumer_groups()) - set(ours))
                for group_id in ours:
                    groups.append(await admin.consumer_group(group_id))
        except Exception as error:
            problem = str(error) or type(error).__name__
        return self.render(
            request, "cluster.html", name=name, cluster=self.app.topology.clusters[name], topics=topics,
            groups=groups, others=others, problem=problem,
        )  # fmt: skip

    async def group(self, request: Request) -> Response:
        await self.ensure_running()
        name = self._cluster_named(request.path_params["name"])
        group_id = request.path_params["group"]
        problem, groups = None, []
        try:
            with anyio.fail_after(15):
                groups = [await self.app.admin.cluster(name).consumer_group(group_id)]
        except Exception as error:
            problem = str(error) or type(error).__name__
        return self.render(
            request, "cluster.html", name=name, cluster=self.app.topology.clusters[name], topics=[],
            groups=groups, others=[], problem=problem,
        )  # fmt: skip

    def _cluster_named(self, name: str) -> str:
        if name not in self.app.topology.clusters:
            raise HTTPException(404, f"no cluster named {name!r}")
        return name

    async def routing(self, request: Request) -> Response:
        await self.ensure_running()
        rows = [
            {"process": p, "listener": ls, "partition": part}
            for p in self.board.live()
            for ls in p.listeners
            for part in ls.partitions
        ]
        return self.render(
            request,
            "routing.html",
            rows=rows,
            schedules=self.board.schedules(),
            topology=self.app.topology,
            replicas=self.app.replicas.described(),
            held_back=self._held_back(),
        )

    def _held_back(self) -> list[dict[str, Any]]:
        """Each route with flow options: its settings, and what the live processes held back."""
        found = []
        for topic in self.app.topology.topics:
            settings = flow_settings(topic.route)
            if settings is None:
                continue
            counts: Counter[str] = Counter()
            for process in self.board.live():
                for listener in process.listeners:
                    held = listener.held_back.get(topic.name)
                    if listener.cluster == topic.cluster and held is not None:
                        counts.update(msgspec.structs.asdict(held))
            found.append(
                {"cluster": topic.cluster, "topic": topic.name, "settings": describe_flow(settings), **counts}
            )
        return found

    async def errors(self, request: Request) -> Response:
        await self.ensure_running()
        return self.render(request, "errors.html", errors=list(self.board.errors))

    async def dead_letters(self, request: Request) -> Response:
        await self.ensure_running()
        queues = sorted(
            {
                (t.dead_letter_cluster, t.route.dead_letter_queue.topic, t.name)
                for t in self.app.topology.topics
                if t.route.dead_letter_queue is not None and t.route.dead_letter_queue.topic is not None
            }
        )
        return self.render(request, "dlq.html", queues=queues)

    async def explorer(self, request: Request) -> Response:
        """Recent messages of one partition of a topic on any cluster."""
        await self.ensure_running()
        query = request.query_params
        cluster = query.get("cluster") or self.app.topology.primary.name
        topic = query.get("topic", "")
        dead_letters = query.get("dlq") == "1"
        messages: list[dict[str, Any]] = []
        problem = None
        try:
            partition = int(query.get("partition", "0"))
            count = min(max(int(query.get("count", "20")), 1), EXPLORER_MAX)
        except ValueError:
            partition, count, problem = 0, 20, "partition and count are whole numbers"
        if cluster not in self.app.topology.clusters:
            problem = f"no cluster named {cluster!r}; the app has: {', '.join(self.app.topology.clusters)}"
        elif topic and problem is None:
            try:
                with anyio.fail_after(10):
                    messages = await self._recent(cluster, topic, partition, count)
            except Exception as error:
                problem = str(error) or type(error).__name__
        return self.render(
            request, "explorer.html", clusters=list(self.app.topology.clusters), cluster=cluster, topic=topic,
            partition=partition, count=count, messages=messages, problem=problem, dead_letters=dead_letters,
        )  # fmt: skip

    async def _recent(self, cluster: str, topic: str, partition: int, count: int) -> list[dict[str, Any]]:
        admin = self.app.admin.cluster(cluster)
        offsets = await admin.offsets(topic)
        if partition not in offsets:
            raise ValueError(f"topic {topic!r} on cluster {cluster!r} has no partition {partition}")
        end = offsets[partition][1]
        found = await admin.read(topic, partition=partition, start=max(end - count, 0), count=count)
        shown = []
        for message in reversed(found):
            kind, text = payloads.show(message.value)
            shown.append(
                {
                    "offset": message.offset,
                    "timestamp": message.timestamp_ms / 1000,
                    "key": payloads.show(message.key, 256)[1],
                    "kind": kind,
                    "value": text,
                    "headers": payloads.headers(message.raw_headers),
                }
            )
        return shown


def create_web_app(
    app: App,
    *,
    token: str | None = None,
    hosts: Collection[str] | None = None,
    board: StatusBoard | None = None,
) -> ASGIApp:
    """The Web UI for ``app`` (see ``app.web.asgi``); ``hosts``: the only ``Host`` values it
    answers (``aiostream-kafka web`` on loopback without a token: ``auth.loopback_hosts``)."""
    ui = WebUI(app, board or StatusBoard(app))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await ui.ensure_running()
        yield
        await ui.aclose()

    probes = WebProbes(app)

    async def probe(request: Request) -> Response:
        status, body, content_type = answer(probes, request.url.path, request.headers.get("accept"))
        return Response(
            body, status_code=status, media_type=content_type, headers={"cache-control": "no-store"}
        )

    routes = [
        Route("/", ui.overview, name="overview"),
        *(Route(path, probe, name=path.strip("/")) for path in PATHS),
        Route("/api/overview", ui.api_overview, name="api_overview"),
        Route("/clusters/{name}", ui.cluster, name="cluster"),
        Route("/clusters/{name}/groups/{group}", ui.group, name="group"),
        Route("/routing", ui.routing, name="routing"),
        Route("/errors", ui.errors, name="errors"),
        Route("/dlq", ui.dead_letters, name="dlq"),
        Route("/explorer", ui.explorer, name="explorer"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if token:
        middleware.insert(0, Middleware(TokenGuard, token=token))
    if hosts is not None:
        middleware.insert(0, Middleware(HostGuard, hosts=hosts))
    web = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    web.state.ui = ui
    return web


class WebProbes(AppProbes):
    """``/livez``, ``/readyz``, ``/metrics`` of the UI: the app's, where it runs in this process
    (the UI mounted next to ``app.lifespan``). In the UI's own process (``aiostream-kafka web``)
    the app never starts, and the UI is ready while it answers."""

    def __init__(self, app: App) -> None:
        super().__init__(app.health)
        self._app = app

    def readiness(self) -> Verdict:
        if self._app.state == "idle":
            return Verdict(
                "ready", True, (), {"state": "idle", "serving": "the Web UI (the app runs elsewhere)"}
            )
        return super().readiness()


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
