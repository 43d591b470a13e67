#!/usr/bin/env python3
"""Run local single-node Apache Kafka (KRaft) clusters for tests, the demo and benchmarks.

Standard library only, so it works before the project's virtualenv exists.

    python tools/kafka/localkafka.py up            # both clusters, idempotent, waits until ready
    python tools/kafka/localkafka.py status
    python tools/kafka/localkafka.py stop secondary [--kill]   # an outage; data is kept
    python tools/kafka/localkafka.py start secondary           # back again, same data
    python tools/kafka/localkafka.py logs primary [-n 100]
    python tools/kafka/localkafka.py down          # stop everything, delete the data
    python tools/kafka/localkafka.py run -- pytest # with clusters up; stops those it started

Each cluster is one JVM acting as broker and controller, with its state (config, data,
log, pid) under ``$AIOSTREAM_KAFKA_STATE`` (default: ``<tmp>/aiostream-kafka/<name>``).
Jars come from Maven Central through ``pom.xml`` next to this file and are cached in ~/.m2.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
STATE = Path(os.environ.get("AIOSTREAM_KAFKA_STATE", Path(tempfile.gettempdir()) / "aiostream-kafka"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aiostream-kafka"
READY_TIMEOUT = float(os.environ.get("AIOSTREAM_KAFKA_READY_TIMEOUT", "90"))
DEFAULT_HEAP = "-Xms128m -Xmx512m"

CLUSTERS = {
    "primary": ("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092"),
    "secondary": ("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:29092"),
}


class LauncherError(Exception):
    """A problem the user can act on; printed without a traceback."""


@dataclass(frozen=True)
class Cluster:
    name: str
    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def home(self) -> Path:
        return STATE / self.name

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "pid"


def cluster(name: str) -> Cluster:
    if name not in CLUSTERS:
        raise LauncherError(f"unknown cluster {name!r}; choose one of: {', '.join(CLUSTERS)}")
    env, default = CLUSTERS[name]
    address = os.environ.get(env, default)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LauncherError(f"{env}={address!r} is not host:port (for example 127.0.0.1:19092)")
    return Cluster(name, host, int(port))


def selected(names: list[str]) -> list[Cluster]:
    return [cluster(name) for name in (names or list(CLUSTERS))]


# --- jars -------------------------------------------------------------------------------


def classpath() -> str:
    """The broker's classpath, resolved by Maven once per pom.xml and cached."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    cache = CACHE / f"classpath-{digest}.txt"
    if cache.exists():
        jars = cache.read_text().strip()
        if all(Path(jar).exists() for jar in jars.split(os.pathsep)):
            return jars
    if shutil.which("mvn") is None:
        raise LauncherError("Maven (mvn) is needed to fetch Kafka's jars; install it (and Java 17+)")
    CACHE.mkdir(parents=True, exist_ok=True)
    print("fetching Apache Kafka jars with Maven (cached in ~/.m2) ...", flush=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:build-classpath", f"-Dmdep.outputFile={cache}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not cache.exists():
        raise LauncherError(f"Maven could not resolve {POM}:\n{result.stdout}{result.stderr}")
    return cache.read_text().strip()


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    binary = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not binary or not Path(binary).exists():
        raise LauncherError("Java 17+ is needed to run Kafka; install it or set JAVA_HOME")
    return binary


# --- the Kafka wire protocol, just enough to ask "are you ready?" ------------------------


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client_id = b"localkafka"
    header = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _read(sock, 4))[0]
    return _read(sock, size)[4:]  # drop the correlation id


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def broker_count(host: str, port: int, timeout: float = 2.0) -> int:
    """Number of brokers a Metadata request returns (0 when nothing answers as Kafka)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            versions = _request(sock, 18, 0, b"")  # ApiVersions v0
            error, count = struct.unpack(">hi", versions[:6])
            if error:
                return 0
            ranges = {}
            for i in range(count):
                key, low, high = struct.unpack(">hhh", versions[6 + 6 * i : 12 + 6 * i])
                ranges[key] = (low, high)
            low, high = ranges.get(3, (0, -1))
            version = max(4, low)
            if version > min(high, 7):  # v4-v7 share the request and the response prefix
                return 0
            body = struct.pack(">ib", -1, 0)  # all topics, no auto-creation
            metadata = _request(sock, 3, version, body)
            brokers: int = struct.unpack(">i", metadata[4:8])[0]
            return brokers  # after throttle_time_ms
    except (OSError, struct.error):
        return 0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def listener_pid(port: int) -> int | None:
    """The pid listening on a TCP port, when /proc can tell (Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def describe_pid(pid: int | None) -> str:
    if pid is None:
        return "another process"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        command = "?"
    if len(command) > 120:
        command = f"{command[:40]} ... {command[-70:]}"
    return f"pid {pid} ({command})"


# --- processes --------------------------------------------------------------------------


def running_pid(c: Cluster) -> int | None:
    """Our broker's pid for this cluster: the pid file's, or any JVM running its config (/proc)."""
    text = c.pid_file.read_text().strip() if c.pid_file.exists() else ""
    recorded = int(text) if text.isdigit() else None
    if not Path("/proc/self").exists():  # no /proc (macOS): trust the pid file
        return recorded if recorded is not None and _alive(recorded) else None
    marker = str(c.config_file).encode()
    candidates = [recorded] if recorded is not None else []
    candidates += [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    for pid in candidates:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and marker in cmdline:
            return pid
    return None


def _alive(pid: int) -> bool:
    try:  # a broker this process started is its child: reap it, or it lingers as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # another process's exited child is a zombie until that process reaps it: dead to us
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def write_config(c: Cluster) -> None:
    c.home.mkdir(parents=True, exist_ok=True)
    c.config_file.write_text(
        "\n".join(
            [
                "# written by tools/kafka/localkafka.py; a single-node KRaft cluster for tests",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{c.host}:{c.controller_port}",
                f"listeners=PLAINTEXT://{c.host}:{c.port},CONTROLLER://{c.host}:{c.controller_port}",
                f"advertised.listeners=PLAINTEXT://{c.host}:{c.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={c.data_dir}",
                "num.partitions=1",
                "num.network.threads=2",
                "num.io.threads=4",
                "auto.create.topics.enable=true",
                "delete.topic.enable=true",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=4",
                "",
            ]
        )
    )


def format_storage(c: Cluster, cp: str) -> None:
    if (c.data_dir / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    result = subprocess.run(
        [
            java(),
            "-cp",
            cp,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",  # "=": a random id may start with "-"
            "-c",
            str(c.config_file),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise LauncherError(f"formatting {c.name}'s storage failed:\n{result.stdout}{result.stderr}")


def check_ports(c: Cluster) -> None:
    """Fail early, naming the port, when something else holds one of the cluster's ports."""
    for port in (c.port, c.controller_port):
        if not port_is_free(c.host, port):
            holder = describe_pid(listener_pid(port))
            raise LauncherError(
                f"{c.name}: port {c.host}:{port} is taken by {holder}, not by this launcher. "
                f"Stop that process or move the cluster with {CLUSTERS[c.name][0]}=host:port "
                f"(the controller uses port+1). Log file: {c.log_file}"
            )


def start(c: Cluster, cp: str) -> str:
    pid = running_pid(c)
    if pid is not None:
        wait_ready(c, pid)
        return f"{c.name}: already running on {c.bootstrap} (pid {pid})"
    check_ports(c)
    write_config(c)
    format_storage(c, cp)
    heap = os.environ.get("KAFKA_HEAP_OPTS", DEFAULT_HEAP).split()
    command = [
        java(), *heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={c.home}", "-cp", cp, "kafka.Kafka", str(c.config_file),
    ]  # fmt: skip
    with open(c.log_file, "ab") as log:
        log.write(f"\n==== starting {c.name} on {c.bootstrap} at {time.ctime()} ====\n".encode())
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    c.pid_file.write_text(str(process.pid))
    started = time.monotonic()
    wait_ready(c, process.pid, process)
    return f"{c.name}: started on {c.bootstrap} (pid {process.pid}) in {time.monotonic() - started:.1f}s"


def wait_ready(c: Cluster, pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if broker_count(c.host, c.port, timeout=1.0) > 0:
            return
        exited = process.poll() if process else (None if _alive(pid) else "?")
        if exited is not None:
            raise LauncherError(
                f"{c.name}: the broker for {c.bootstrap} exited (code {exited}) before it was ready. "
                f"Log file: {c.log_file}\n{tail(c.log_file, 25)}"
            )
        time.sleep(0.2)
    raise LauncherError(
        f"{c.name}: no metadata answer from {c.bootstrap} after {READY_TIMEOUT:.0f}s "
        f"(pid {pid} is still up). "
        f"Log file: {c.log_file}\n{tail(c.log_file, 25)}"
    )


def stop(c: Cluster, kill: bool = False, timeout: float = 30.0) -> str:
    pid = running_pid(c)
    if pid is None:
        c.pid_file.unlink(missing_ok=True)
        return f"{c.name}: not running"
    os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    c.pid_file.unlink(missing_ok=True)
    return f"{c.name}: stopped (pid {pid}{', killed' if kill else ''})"


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"(no log yet at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- commands ---------------------------------------------------------------------------


def parallel(function: Callable[[Cluster], str], clusters: list[Cluster]) -> None:
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(clusters)) as pool:
        for future in [pool.submit(function, c) for c in clusters]:
            try:
                print(future.result(), flush=True)
            except LauncherError as error:
                failures.append(str(error))
    if failures:
        raise LauncherError("\n".join(failures))


def cmd_up(args: argparse.Namespace) -> None:
    clusters = selected(args.names)
    for c in clusters:
        if running_pid(c) is None:
            check_ports(c)
    cp = classpath()
    parallel(lambda c: start(c, cp), clusters)


def cmd_down(args: argparse.Namespace) -> None:
    clusters = selected(args.names)
    parallel(stop, clusters)
    for c in clusters:
        shutil.rmtree(c.data_dir, ignore_errors=True)


def cmd_start(args: argparse.Namespace) -> None:
    cmd_up(args)


def cmd_stop(args: argparse.Namespace) -> None:
    parallel(lambda c: stop(c, kill=args.kill), selected(args.names))


def cmd_status(args: argparse.Namespace) -> None:
    all_ready = True
    for c in selected(args.names):
        pid = running_pid(c)
        ready = broker_count(c.host, c.port) > 0
        all_ready &= pid is not None and ready
        state = "ready" if pid and ready else "starting" if pid else "stopped"
        print(f"{c.name:<10} {c.bootstrap:<18} {state:<9} pid={pid or '-':<8} log={c.log_file}")
    if not all_ready:
        raise SystemExit(3)


def cmd_logs(args: argparse.Namespace) -> None:
    for c in selected(args.names):
        print(f"==> {c.log_file} <==")
        print(tail(c.log_file, args.lines))


def cmd_run(args: argparse.Namespace) -> None:
    """Run a command with both clusters up; stop afterwards the ones this started."""
    command = args.names[1:] if args.names[:1] == ["--"] else args.names
    if not command:
        raise LauncherError("run needs a command, for example: localkafka.py run -- pytest")
    clusters = selected([])
    missing = [c for c in clusters if running_pid(c) is None and broker_count(c.host, c.port) == 0]
    try:
        if missing:
            cmd_up(argparse.Namespace(names=[c.name for c in missing]))
        code = subprocess.call(command)
    finally:  # also when only some of them came up
        if missing:
            cmd_down(argparse.Namespace(names=[c.name for c in missing]))
    raise SystemExit(code)


def cmd_fetch(args: argparse.Namespace) -> None:
    print(f"{len(classpath().split(os.pathsep))} jars on the classpath")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function, help_text in [
        ("up", cmd_up, "start clusters (all by default) and wait until they answer metadata"),
        ("down", cmd_down, "stop clusters and delete their data"),
        ("start", cmd_start, "start stopped clusters, keeping their data"),
        ("stop", cmd_stop, "stop clusters, keeping their data (for outage tests)"),
        ("status", cmd_status, "show each cluster; exit 3 unless all are ready"),
        ("logs", cmd_logs, "print the end of each cluster's log"),
        ("fetch", cmd_fetch, "resolve the jars with Maven and exit"),
        ("run", cmd_run, "run -- COMMAND with both clusters up, stopping afterwards those it started"),
    ]:
        sub = commands.add_parser(name, help=help_text)
        if name == "run":
            sub.add_argument("names", nargs=argparse.REMAINDER, metavar="-- COMMAND")
        else:
            sub.add_argument("names", nargs="*", metavar="NAME", help=f"cluster names: {', '.join(CLUSTERS)}")
        sub.set_defaults(function=function)
        if name == "stop":
            sub.add_argument("--kill", action="store_true", help="SIGKILL instead of a controlled shutdown")
        if name == "logs":
            sub.add_argument("-n", "--lines", type=int, default=60)
    args = parser.parse_args(argv)
    try:
        args.function(args)
    except LauncherError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
