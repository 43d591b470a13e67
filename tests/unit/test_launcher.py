"""The local-cluster launcher fails with errors that say what to fix."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.kafka_clusters import LAUNCHER, localkafka


def run_launcher(tmp_path: Path, port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "AIOSTREAM_KAFKA_STATE": str(tmp_path),
            "AIOSTREAM_KAFKA_PRIMARY": f"127.0.0.1:{port}",
            **env,
        },
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_taken_port_is_named_with_its_holder_and_the_log_file(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        result = run_launcher(tmp_path, port, "up", "primary")

    assert result.returncode == 1
    assert f"port 127.0.0.1:{port} is taken by pid {os.getpid()}" in result.stderr
    assert f"Log file: {tmp_path / 'primary' / 'kafka.log'}" in result.stderr
    assert "AIOSTREAM_KAFKA_PRIMARY" in result.stderr


@pytest.mark.slow
def test_a_broker_that_dies_at_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    port = free_port()

    result = run_launcher(tmp_path, port, "up", "primary", KAFKA_HEAP_OPTS="-Xmx1k")

    assert result.returncode == 1
    assert f"the broker for 127.0.0.1:{port} exited" in result.stderr
    assert str(tmp_path / "primary" / "kafka.log") in result.stderr
    assert "Too small maximum heap" in result.stderr


def test_an_unknown_cluster_name_lists_the_known_ones(tmp_path: Path) -> None:
    result = run_launcher(tmp_path, free_port(), "stop", "tertiary")

    assert result.returncode == 1
    assert "unknown cluster 'tertiary'; choose one of: primary, secondary" in result.stderr


def test_status_of_stopped_clusters_exits_non_zero(tmp_path: Path) -> None:
    result = run_launcher(tmp_path, free_port(), "status", "primary")

    assert result.returncode == 3
    assert "stopped" in result.stdout


def free_port_pair() -> int:
    """A port whose successor (the controller's port) is free as well."""
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@pytest.mark.slow
def test_run_starts_a_cluster_for_a_command_and_leaves_no_jvm_behind(tmp_path: Path) -> None:
    port = free_port_pair()
    probe = (
        "import sys; sys.path.insert(0, 'tools/kafka'); import localkafka; "
        f"sys.exit(0 if localkafka.broker_count('127.0.0.1', {port}) == 1 else 9)"
    )
    secondary = f"127.0.0.1:{free_port_pair()}"

    result = run_launcher(
        tmp_path, port, "run", "--", sys.executable, "-c", probe, AIOSTREAM_KAFKA_SECONDARY=secondary
    )

    assert result.returncode == 0, result.stderr
    assert "primary: stopped" in result.stdout
    survivors = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert survivors.stdout == ""


@pytest.mark.slow
def test_a_cluster_id_starting_with_a_dash_is_not_read_as_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localkafka, "STATE", tmp_path)
    dash_id = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    monkeypatch.setattr(localkafka.uuid, "uuid4", lambda: dash_id)
    cluster = localkafka.cluster("primary")
    localkafka.write_config(cluster)

    localkafka.format_storage(cluster, localkafka.classpath())

    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in (cluster.data_dir / "meta.properties").read_text()


@pytest.mark.slow
def test_another_process_can_stop_a_broker_that_run_started(tmp_path: Path) -> None:
    """The outage tests do this: 'run' owns the JVM, a separate 'stop' must still see it exit."""
    port = free_port_pair()
    stop_from_elsewhere = (
        "import subprocess, sys; "
        f"stop = [sys.executable, {str(LAUNCHER)!r}, 'stop', 'primary']; "
        "sys.exit(subprocess.run(stop, timeout=60).returncode)"
    )
    secondary = f"127.0.0.1:{free_port_pair()}"

    result = run_launcher(
        tmp_path,
        port,
        "run",
        "--",
        sys.executable,
        "-c",
        stop_from_elsewhere,
        AIOSTREAM_KAFKA_SECONDARY=secondary,
    )

    assert result.returncode == 0, result.stderr
    assert "primary: stopped" in result.stdout
