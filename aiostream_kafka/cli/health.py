"""The ``health`` command (an exec probe: exit 0 or 1), and ``run --health``'s server.

``aiostream-kafka health live|ready HOST:PORT`` asks the probe server of ``run --health
HOST:PORT`` and prints why a probe fails, for orchestrators that run a command rather than
an HTTP GET, and for people.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from aiostream_kafka.cli.errors import FAILED, CliError
from aiostream_kafka.probes.client import fetch
from aiostream_kafka.probes.server import ProbeServer, ProbeSource


def address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``--health``, ``health``): ``0.0.0.0:8081`` for a pod, ``127.0.0.1:8081`` locally."""
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 0.0.0.0:8081), not {value!r}")
    return host.strip("[]"), int(port)


@contextmanager
def serving(source: ProbeSource, where: tuple[str, int] | str) -> Iterator[ProbeServer]:
    """The probe server for the block; an address it cannot listen on is the user's to fix."""
    server = ProbeServer(source, where)
    try:
        server.start()
    except OSError as error:
        shown = where if isinstance(where, str) else f"{where[0]}:{where[1]}"
        raise CliError(f"--health {shown}: cannot listen there: {error.strerror or error}") from None
    try:
        yield server
    finally:
        server.stop()


def command(args: argparse.Namespace) -> int:
    host, port = args.address
    path = "/livez" if args.probe == "live" else "/readyz"
    try:
        status, body, _ = fetch((host, port), path, timeout=args.timeout)
    except OSError as error:
        print(
            f"{args.probe}: no answer from {host}:{port} within {args.timeout:g}s ({error}); "
            f"is `aiostream-kafka run APP --health {host}:{port}` running?",
            file=sys.stderr,
        )
        return FAILED
    try:
        problems = json.loads(body).get("problems", [])
    except ValueError:
        problems = [body.decode(errors="replace").strip()]
    if status == 200:
        print(f"{args.probe}: yes")
        return 0
    print(f"{args.probe}: no (HTTP {status})", file=sys.stderr)
    for problem in problems:
        print(f"- {problem}", file=sys.stderr)
    return FAILED
