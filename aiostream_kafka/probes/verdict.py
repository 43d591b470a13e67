"""A probe's answer: whether it passes, why not, and what it saw, as JSON and an HTTP status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiostream_kafka.instrumentation.redaction import masked


@dataclass(frozen=True)
class Verdict:
    """``ok``: the probe passes; ``problems``: one sentence each, naming what to look at."""

    probe: str  # "live" or "ready"
    ok: bool
    problems: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int:
        """200 or 503: all an orchestrator's HTTP probe reads."""
        return 200 if self.ok else 503

    def to_json(self) -> dict[str, Any]:
        return {self.probe: self.ok, "problems": list(self.problems), **self.details}

    def body(self) -> bytes:
        """The JSON answer, with every secret the app declared masked (errors may quote them)."""
        return masked(json.dumps(self.to_json(), indent=2, default=str)).encode() + b"\n"

    @classmethod
    def from_json(cls, probe: str, document: dict[str, Any]) -> Verdict:
        """The verdict another process answered (``run --processes``: a worker's)."""
        details = {k: v for k, v in document.items() if k not in (probe, "problems")}
        return cls(probe, bool(document.get(probe)), tuple(document.get("problems", ())), details)
