"""``app.web``: turn status reporting on, and get the Web UI as an ASGI app.

Reporting follows Karafka's Web UI: every process reports to topics on the primary
cluster, unless pointed at another (``cluster=``). The UI, wherever it runs, reads them
there, and reads topics, groups and messages of every cluster through ``app.admin``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from aiostream_kafka.contracts.web import check_reporting
from aiostream_kafka.errors import UnknownClusterError

if TYPE_CHECKING:
    from aiostream_kafka.app import App
    from aiostream_kafka.producing.producer import Producer
    from aiostream_kafka.web.reporter import Reporter

REPORTS_TOPIC = "aiostream_kafka.reports"
ERRORS_TOPIC = "aiostream_kafka.errors"
#: Reports are a live view, not a history: an hour is plenty (the UI reads the last minutes).
RETENTION = {"retention.ms": str(3_600_000), "cleanup.policy": "delete"}


class Web:
    """``clusters``: the app's cluster names, so that ``enable(cluster=...)`` naming another fails at once."""

    def __init__(self, app: App, *, clusters: Collection[str] | None = None) -> None:
        self._app = app
        self._clusters = clusters
        self.enabled = False
        self._cluster: str | None = None
        self.interval = 5.0
        self.reports_topic = REPORTS_TOPIC
        self.errors_topic = ERRORS_TOPIC
        self.reporter: Reporter | None = None
        self._reporting: asyncio.Task[None] | None = None

    def enable(
        self,
        *,
        cluster: str | None = None,
        interval: float = 5.0,
        reports_topic: str = REPORTS_TOPIC,
        errors_topic: str = ERRORS_TOPIC,
    ) -> None:
        """Report this process's status every ``interval`` seconds while it runs, to topics on
        ``cluster`` (the primary by default); the topics are declared (``topics migrate``)."""
        check_reporting(
            enabled=self.enabled,
            cluster=cluster,
            clusters=self._clusters,
            interval=interval,
            reports_topic=reports_topic,
            errors_topic=errors_topic,
        )
        self.enabled = True
        self._cluster = cluster
        self.interval = float(interval)
        self.reports_topic, self.errors_topic = reports_topic, errors_topic
        for topic in (reports_topic, errors_topic):
            self._app.topics.declare(topic, cluster=cluster, settings=RETENTION)

    @property
    def cluster(self) -> str:
        """Where reports go and are read: the primary unless ``enable(cluster=...)`` said otherwise."""
        return self._cluster or self._app.topology.primary.name

    @property
    def producer(self) -> Producer | None:
        """The reporter's producer while the app runs with reporting on."""
        return self.reporter.producer if self.reporter is not None else None

    def check_reporting_cluster(self, clusters: Collection[str]) -> None:
        """The reporting cluster exists, for one ``enable`` could not refuse (an inline cluster's
        name); before the topology is built, which would name the declared reports topic
        instead of the setting to fix."""
        if self._cluster is not None and self._cluster not in clusters:
            raise UnknownClusterError.named(self._cluster, clusters, "app.web.enable(cluster=...)")

    async def start_reporting(self) -> None:
        if not self.enabled:
            return
        from aiostream_kafka.web.reporter import Reporter

        self.reporter = Reporter(
            self._app,
            cluster=self.cluster,
            reports_topic=self.reports_topic,
            errors_topic=self.errors_topic,
            interval=self.interval,
        )
        self.reporter.install(self._app.monitor)
        self._reporting = asyncio.create_task(self.reporter.run(), name=f"{self._app.name} web reporter")

    async def stop_reporting(self) -> None:
        reporter, self.reporter = self.reporter, None
        task, self._reporting = self._reporting, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        if reporter is not None:
            await reporter.stop()

    def asgi(self, *, token: str | None = None, **options: Any) -> Any:
        """The Web UI as an ASGI app (Starlette; ``pip install 'aiostream-kafka[web]'``), to mount
        in FastAPI (``api.mount("/kafka", app.web.asgi(token=...))``) or serve on its own
        (``aiostream-kafka web APP``). ``token``: required from every request when given;
        ``hosts``: answer only requests with one of these ``Host`` headers (``host:port``)."""
        from aiostream_kafka.web.server import create_web_app

        return create_web_app(self._app, token=token, **options)
