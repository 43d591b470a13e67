"""The two local Kafka clusters as the test suite sees them, driven by tools/kafka/localkafka.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

LAUNCHER = Path(__file__).resolve().parents[1] / "tools" / "kafka" / "localkafka.py"


def _load_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("localkafka", LAUNCHER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:  # the same file, found by its path, so that its types are checked against
    from tools.kafka import localkafka as localkafka
else:  # a script, not a package: loaded from its file
    localkafka = _load_launcher()


class KafkaClusters:
    """Bootstrap addresses of the primary and secondary clusters, and outages on demand."""

    names = ("primary", "secondary")

    def bootstrap(self, name: str) -> str:
        return str(localkafka.cluster(name).bootstrap)

    @property
    def primary(self) -> str:
        return self.bootstrap("primary")

    @property
    def secondary(self) -> str:
        return self.bootstrap("secondary")

    def ready(self, name: str) -> bool:
        c = localkafka.cluster(name)
        return bool(localkafka.broker_count(c.host, c.port) > 0)

    def ready_secure(self) -> bool:
        return bool(localkafka.is_ready(localkafka.cluster("secure")))

    def credentials(self, name: str) -> dict[str, Any]:
        """What a client of a secure cluster needs (its client.json)."""
        document: dict[str, Any] = json.loads(localkafka.cluster(name).client_file.read_text())
        return document

    def launcher(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(LAUNCHER), *args], capture_output=True, text=True, timeout=180
        )

    def up(self, *names: str) -> None:
        result = self.launcher("up", *names)
        if result.returncode != 0:
            raise RuntimeError(f"could not start Kafka: {result.stderr}{result.stdout}")

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Take one cluster down (its data is kept), as an outage would."""
        result = self.launcher("stop", name, *(["--kill"] if kill else []))
        if result.returncode != 0:
            raise RuntimeError(f"could not stop {name}: {result.stderr}")

    def start(self, name: str) -> None:
        self.up(name)

    def down(self) -> None:
        self.launcher("down")
