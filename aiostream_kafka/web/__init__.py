"""Status reporting for the Web UI, and the UI itself (``app.web``; see docs/web.md)."""

from aiostream_kafka.web.reports import ErrorReport, ProcessReport
from aiostream_kafka.web.web import Web

__all__ = ["ErrorReport", "ProcessReport", "Web"]
