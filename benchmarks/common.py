"""What the benchmarks share: where the local clusters are, fresh names, the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

PRIMARY = os.environ.get("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092")
RESULTS = Path(__file__).parent / "results"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json``: the figures, the machine, and when."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.system()},
        **figures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
