"""docs/deploy.md's manifests are what they say: the YAML parses as a Deployment whose command
the CLI accepts and whose probes ask the paths and the port ``--health`` serves, with time
to stop gracefully; the systemd unit likewise."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from aiostream_kafka import App
from aiostream_kafka.cli import STOP_MARGIN, build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
#: What a graceful stop of the default app may take: its shutdown_timeout and the parent's margin.
STOP = App("x", kafka={"bootstrap_servers": "127.0.0.1:1"}).shutdown_timeout + STOP_MARGIN


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DEPLOY.read_text(), re.S | re.M)


def test_the_kubernetes_deployment_probes_what_run_health_serves() -> None:
    [manifest] = blocks("yaml")
    deployment: dict[str, Any] = yaml.safe_load(manifest)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = build_parser().parse_args(container["args"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    probes = {
        kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }

    assert deployment["kind"] == "Deployment"
    assert container["command"] == ["aiostream-kafka"]
    assert args.command == "run"
    assert args.processes == 2
    assert args.health == ("0.0.0.0", ports["health"])
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/livez",
        "livenessProbe": "/livez",
        "readinessProbe": "/readyz",
    }
    assert {probe["port"] for probe in probes.values()} == {"health"}
    assert (
        str(ports["health"])
        == deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
    )
    assert pod["terminationGracePeriodSeconds"] > STOP
    assert (
        deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    )
    assert float(container["resources"]["requests"]["cpu"]) == args.processes  # a core per process


def test_the_systemd_unit_stops_the_parent_alone_and_waits_long_enough() -> None:
    [text] = blocks("ini")
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    unit.read_string(text)
    service = unit["Service"]
    executable, *arguments = shlex.split(service["ExecStart"])
    args = build_parser().parse_args(arguments)

    assert executable.endswith("/bin/aiostream-kafka")
    assert (args.command, args.health) == ("run", ("127.0.0.1", 8081))
    assert args.processes is not None
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > STOP
    assert service["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
