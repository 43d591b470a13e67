#!/usr/bin/env python3
"""Run local single-node Apache Kafka (KRaft) clusters for tests, the demo and benchmarks.

Standard library only, so it works before the project's virtualenv exists.

    python tools/kafka/localkafka.py up            # both clusters, idempotent, waits until ready
    python tools/kafka/localkafka.py up secure     # the TLS + SASL cluster, only when named
    python tools/kafka/localkafka.py credentials   # what a client needs for the secure one (JSON)
    python tools/kafka/localkafka.py status
    python tools/kafka/localkafka.py stop secondary [--kill]   # an outage; data is kept
    python tools/kafka/localkafka.py start secondary           # back again, same data
    python tools/kafka/localkafka.py logs primary [-n 100]
    python tools/kafka/localkafka.py down          # stop every cluster, delete their data
    python tools/kafka/localkafka.py run -- pytest # with clusters up; stops those it started
    python tools/kafka/localkafka.py mirror up --topics 'orders.*' --groups '.*'   # MirrorMaker 2
    python tools/kafka/localkafka.py mirror down   # primary -> secondary until then

Each cluster is one JVM acting as broker and controller, with its state (config, data,
log, pid) under ``$AIOSTREAM_KAFKA_STATE`` (default: ``<tmp>/aiostream-kafka/<name>``).
Jars come from Maven Central through ``pom.xml`` next to this file and are cached in ~/.m2.
The secure cluster also needs ``openssl``, to make its throwaway CA and certificates.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
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
MIRROR_POM = HERE / "mirror" / "pom.xml"  # MirrorMaker 2's jars, a classpath of their own
LOG4J_CONFIG = HERE / "log4j2.properties"
STATE = Path(os.environ.get("AIOSTREAM_KAFKA_STATE", Path(tempfile.gettempdir()) / "aiostream-kafka"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aiostream-kafka"
READY_TIMEOUT = float(os.environ.get("AIOSTREAM_KAFKA_READY_TIMEOUT", "90"))
DEFAULT_HEAP = "-Xms128m -Xmx512m"

CLUSTERS = {
    "primary": ("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:19092"),
    "secondary": ("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:29092"),
    # Every default port lies below 32768: Linux hands 32768-60999 to outgoing connections,
    # so a listener there collides, at random, with any client socket of the test suite.
    "secure": ("AIOSTREAM_KAFKA_SECURE", "127.0.0.1:17092"),
}
DEFAULT_CLUSTERS = ("primary", "secondary")  # what `up` and `run` start when no name is given
SECURE_CLUSTERS = ("secure",)  # TLS and SASL only, started on demand: most tests need neither
TEST_USER = "aiostream"  # the secure cluster's client login, for SCRAM-SHA-512 and PLAIN alike
ADMIN_USER = "admin"  # the broker's own login, on its inter-broker SASL_SSL connections
SASL_MECHANISMS = ("SCRAM-SHA-512", "PLAIN")


class LauncherError(Exception):
    """A problem the user can act on; printed without a traceback."""


@dataclass(frozen=True)
class Cluster:
    name: str
    host: str
    port: int
    secure: bool = False  # SASL_SSL on port, mutual TLS on port + 2, no plaintext client listener

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def mtls_port(self) -> int:
        """The secure cluster's SSL listener, which requires a client certificate."""
        return self.port + 2

    @property
    def ports(self) -> tuple[int, ...]:
        both = (self.port, self.controller_port)
        return (*both, self.mtls_port) if self.secure else both

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

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def passwords_file(self) -> Path:
        return self.home / "passwords.json"

    @property
    def client_file(self) -> Path:
        """Everything a client of the secure cluster needs, as JSON (see tools/kafka/README.md)."""
        return self.home / "client.json"

    @property
    def disposable(self) -> tuple[Path, ...]:
        """What `down` deletes: the data, and what only that data's SCRAM users make sense with."""
        return (self.data_dir, self.tls_dir, self.passwords_file, self.client_file)


def cluster(name: str) -> Cluster:
    if name not in CLUSTERS:
        raise LauncherError(f"unknown cluster {name!r}; choose one of: {', '.join(CLUSTERS)}")
    env, default = CLUSTERS[name]
    address = os.environ.get(env, default)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LauncherError(f"{env}={address!r} is not host:port (for example 127.0.0.1:19092)")
    return Cluster(name, host, int(port), secure=name in SECURE_CLUSTERS)


def selected(names: list[str], everything: bool = False) -> list[Cluster]:
    """The named clusters; without names the default ones, or every one (to stop or report)."""
    return [cluster(name) for name in (names or (list(CLUSTERS) if everything else DEFAULT_CLUSTERS))]


# --- jars -------------------------------------------------------------------------------


def classpath(pom: Path = POM) -> str:
    """The broker's classpath (or MirrorMaker's, for its pom), resolved by Maven once per pom and cached."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
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
        ["mvn", "-q", "-B", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={cache}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not cache.exists():
        raise LauncherError(f"Maven could not resolve {pom}:\n{result.stdout}{result.stderr}")
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


def broker_count(
    host: str,
    port: int,
    timeout: float = 2.0,
    tls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> int:
    """Number of brokers a Metadata request returns (0 when nothing answers as Kafka).

    ``tls`` wraps the connection in TLS. ``login`` (user, password) signs in with
    SCRAM-SHA-512 first: a SASL listener answers only ApiVersions and the SASL requests
    before that, and closes the connection on anything else.
    """
    try:
        with _connect(host, port, timeout, tls) as sock:
            versions = _api_versions(sock)
            if versions is None:
                return 0
            if login is not None:
                _scram_login(sock, versions, *login)
            return _metadata_brokers(sock, versions)
    except (OSError, struct.error, ValueError, KeyError):
        return 0


def _connect(host: str, port: int, timeout: float, tls: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    if tls is None:
        return sock
    try:
        return tls.wrap_socket(sock, server_hostname=host)
    except OSError:
        sock.close()
        raise


def _api_versions(sock: socket.socket) -> dict[int, tuple[int, int]] | None:
    """The broker's supported version range per API key, or None when it answers with an error."""
    versions = _request(sock, 18, 0, b"")  # ApiVersions v0
    error, count = struct.unpack(">hi", versions[:6])
    if error:
        return None
    ranges = {}
    for i in range(count):
        key, low, high = struct.unpack(">hhh", versions[6 + 6 * i : 12 + 6 * i])
        ranges[key] = (low, high)
    return ranges


def _version(ranges: dict[int, tuple[int, int]], api_key: int, low: int, high: int) -> int:
    """The lowest version of an API both sides speak within [low, high], the ones parsed here."""
    theirs = ranges.get(api_key, (0, -1))
    version = max(low, theirs[0])
    if version > min(high, theirs[1]):
        raise ConnectionError(f"no common version of API {api_key}")
    return version


def _metadata_brokers(sock: socket.socket, ranges: dict[int, tuple[int, int]]) -> int:
    version = _version(ranges, 3, 4, 7)  # v4-v7 share the request and the response prefix
    body = struct.pack(">ib", -1, 0)  # all topics, no auto-creation
    metadata = _request(sock, 3, version, body)
    brokers: int = struct.unpack(">i", metadata[4:8])[0]
    return brokers  # after throttle_time_ms


def _string(text: str) -> bytes:
    return struct.pack(">h", len(text.encode())) + text.encode()


def _sasl_handshake(sock: socket.socket, ranges: dict[int, tuple[int, int]], mechanism: str) -> None:
    """SaslHandshake v1: the mechanism's messages then travel in SaslAuthenticate requests."""
    response = _request(sock, 17, _version(ranges, 17, 1, 1), _string(mechanism))
    if struct.unpack(">h", response[:2])[0]:
        raise ConnectionError(f"the broker does not offer SASL {mechanism}")


def _sasl_authenticate(sock: socket.socket, ranges: dict[int, tuple[int, int]], message: bytes) -> bytes:
    """One SASL round trip; v0 and v1 start their responses alike."""
    version = _version(ranges, 36, 0, 1)
    response = _request(sock, 36, version, struct.pack(">i", len(message)) + message)
    error, text_size = struct.unpack(">hh", response[:4])
    if error:
        text = response[4 : 4 + text_size].decode(errors="replace") if text_size > 0 else ""
        raise ConnectionError(f"SASL authentication failed (error {error}): {text}")
    offset = 4 + max(text_size, 0)
    size = struct.unpack(">i", response[offset : offset + 4])[0]
    return response[offset + 4 : offset + 4 + size]


def _scram_login(sock: socket.socket, ranges: dict[int, tuple[int, int]], user: str, password: str) -> None:
    """Sign in as clients do with SCRAM-SHA-512, which proves the SCRAM users are loaded."""
    _sasl_handshake(sock, ranges, "SCRAM-SHA-512")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"  # our user names need no SCRAM escaping
    server_first = _sasl_authenticate(sock, ranges, f"n,,{first_bare}".encode()).decode()
    final = scram_client_final(first_bare, server_first, password, nonce, "sha512")
    _sasl_authenticate(sock, ranges, final.encode())  # an error here means a wrong password


def scram_client_final(first_bare: str, server_first: str, password: str, nonce: str, hash_name: str) -> str:
    """The client-final-message of RFC 5802 (SCRAM) for the server's salt, iterations and nonce."""
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    if not fields["r"].startswith(nonce):
        raise ConnectionError("the broker's SCRAM nonce does not extend ours")
    salt, iterations = base64.b64decode(fields["s"]), int(fields["i"])
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"  # biws: base64 of "n,,", no channel binding
    signature = hmac.digest(stored_key, f"{first_bare},{server_first},{without_proof}".encode(), hash_name)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _sockets_on(port: int) -> list[tuple[str, str]]:
    """(state, inode) of every TCP socket whose local port is ``port``, from /proc (Linux)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append((fields[3], fields[9]))
    return found


def held_by_a_client(port: int) -> bool:
    """Whether ``port`` is held only as the local end of connections (no listener): an
    outgoing connection's ephemeral port, or one that is closing (TIME_WAIT)."""
    sockets = _sockets_on(port)
    return bool(sockets) and all(state != "0A" for state, _ in sockets)


def listener_pid(port: int) -> int | None:
    """The pid listening on a TCP port, when /proc can tell (Linux)."""
    inodes = {f"socket:[{inode}]" for state, inode in _sockets_on(port) if state == "0A"}
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


# --- the secure cluster: a throwaway CA, certificates and passwords ------------------------

TLS_DAYS = "365"
TLS_FILES = ("ca.pem", "broker-keystore.pem", "client.pem", "client.key", "client-encrypted.key")
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


@dataclass(frozen=True)
class Passwords:
    """A secure cluster's passwords, made with its storage because its SCRAM users live there.

    Random per cluster state, so that a test can look for them where they must not leak.
    """

    user: str  # TEST_USER's, for SCRAM-SHA-512 and PLAIN
    admin: str  # ADMIN_USER's, the broker's own on its inter-broker connections
    key: str  # encrypts tls/client-encrypted.key

    @classmethod
    def generate(cls) -> Passwords:
        return cls(user=secrets.token_hex(16), admin=secrets.token_hex(16), key=secrets.token_hex(16))


def formatted(c: Cluster) -> bool:
    return (c.data_dir / "meta.properties").exists()


def remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def prepare_secure(c: Cluster) -> Passwords:
    """Passwords, TLS files and client.json for a secure cluster: new with new storage, then kept."""
    if formatted(c):
        passwords = load_passwords(c)
        missing = [name for name in TLS_FILES if not (c.tls_dir / name).exists()]
        if missing:
            raise LauncherError(
                f"{c.name}: {c.tls_dir} lacks {', '.join(missing)}; "
                f"`localkafka.py down {c.name}` starts the cluster afresh"
            )
    else:
        openssl()  # before anything is written
        remove((c.tls_dir, c.passwords_file, c.client_file))  # left over from an earlier state
        c.home.mkdir(parents=True, exist_ok=True)
        c.home.chmod(0o700)  # server.properties holds the passwords too
        passwords = Passwords.generate()
        make_tls(c, passwords.key)
        write_private(c.passwords_file, json.dumps(passwords.__dict__, indent=2) + "\n")
    write_private(c.client_file, json.dumps(client_settings(c, passwords), indent=2) + "\n")
    return passwords


def load_passwords(c: Cluster) -> Passwords:
    try:
        return Passwords(**json.loads(c.passwords_file.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise LauncherError(
            f"{c.name}: cannot read its passwords from {c.passwords_file} ({error}); "
            f"`localkafka.py down {c.name}` starts the cluster afresh"
        ) from None


def client_settings(c: Cluster, passwords: Passwords) -> dict[str, object]:
    """What client.json says: named after aiokafka's arguments where there is one."""
    return {
        "sasl_ssl_bootstrap_servers": c.bootstrap,
        "ssl_bootstrap_servers": f"{c.host}:{c.mtls_port}",
        "sasl_mechanisms": list(SASL_MECHANISMS),
        "username": TEST_USER,
        "password": passwords.user,
        "cafile": str(c.tls_dir / "ca.pem"),
        "certfile": str(c.tls_dir / "client.pem"),
        "keyfile": str(c.tls_dir / "client.key"),
        "encrypted_keyfile": str(c.tls_dir / "client-encrypted.key"),
        "key_password": passwords.key,
    }


def openssl() -> str:
    binary = shutil.which("openssl")
    if binary is None:
        raise LauncherError(
            "the secure cluster needs `openssl` to make its throwaway CA and certificates; "
            "install it (for example: apt-get install openssl)"
        )
    return binary


def _openssl(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
    result = subprocess.run(
        [openssl(), *args], input=stdin, capture_output=True, env={**os.environ, **(env or {})}
    )
    if result.returncode != 0:
        raise LauncherError(f"openssl {args[0]} failed:\n{result.stderr.decode(errors='replace')}")
    return result.stdout


def make_tls(c: Cluster, key_password: str) -> None:
    """A throwaway CA, and signed by it a certificate for the broker and one for clients.

    All PEM, because Kafka reads PEM key and trust stores itself (ssl.keystore.type=PEM):
    no keytool, no Java keystore passwords. The client key also comes encrypted with
    ``key_password``, for tests of encrypted keys.
    """
    tls = c.tls_dir
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    _new_key(tls / "ca.key")
    _openssl(
        "req", "-x509", "-new", "-key", str(tls / "ca.key"), "-days", TLS_DAYS,
        "-subj", f"/CN=aiostream-kafka {c.name} throwaway CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", str(tls / "ca.pem"),
    )  # fmt: skip
    # clientAuth too: the broker shows this certificate to its controller, which requires one
    broker_names = f"subjectAltName={subject_alt_names(c.host)}"
    _issue(c, "broker", [broker_names, "extendedKeyUsage=serverAuth,clientAuth"])
    _issue(c, "client", ["extendedKeyUsage=clientAuth"])
    _openssl(
        "pkcs8", "-topk8", "-in", str(tls / "client.key"), "-out", str(tls / "client-encrypted.key"),
        "-passout", "env:AIOSTREAM_KAFKA_KEY_PASSWORD",  # not on the command line, which ps shows
        env={"AIOSTREAM_KAFKA_KEY_PASSWORD": key_password},
    )  # fmt: skip
    keystore = b"".join((tls / name).read_bytes() for name in ("broker.key", "broker.pem", "ca.pem"))
    write_private(tls / "broker-keystore.pem", keystore.decode())  # Kafka's PEM key store: key, then chain


def _new_key(path: Path) -> None:
    """An EC P-256 key in PKCS#8, the form Kafka's PEM key store reads."""
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def _issue(c: Cluster, name: str, extensions: list[str]) -> None:
    """``<name>.key`` and ``<name>.pem``, a certificate for it signed by the cluster's CA."""
    tls = c.tls_dir
    _new_key(tls / f"{name}.key")
    subject = f"/CN=aiostream-kafka {c.name} {name}"
    request = _openssl("req", "-new", "-key", str(tls / f"{name}.key"), "-subj", subject)
    extensions_file = tls / f"{name}.ext"
    extensions_file.write_text("\n".join(["basicConstraints=critical,CA:FALSE", *extensions, ""]))
    _openssl(
        "x509", "-req", "-CA", str(tls / "ca.pem"), "-CAkey", str(tls / "ca.key"),
        "-set_serial", str(secrets.randbits(63)), "-days", TLS_DAYS,
        "-extfile", str(extensions_file), "-out", str(tls / f"{name}.pem"),
        stdin=request,
    )  # fmt: skip


def subject_alt_names(host: str) -> str:
    """The names clients check the broker's certificate against, and the broker itself too."""
    names = ["IP:127.0.0.1", "DNS:localhost"]
    try:
        configured = f"IP:{ipaddress.ip_address(host)}"
    except ValueError:
        configured = f"DNS:{host}"
    return ",".join(names if configured in names else [*names, configured])


def tls_context(c: Cluster, client_certificate: bool = False) -> ssl.SSLContext:
    """A client's TLS settings for the secure cluster: trust its CA only, maybe show a certificate."""
    context = ssl.create_default_context(cafile=str(c.tls_dir / "ca.pem"))
    if client_certificate:
        context.load_cert_chain(c.tls_dir / "client.pem", c.tls_dir / "client.key")
    return context


def is_ready(c: Cluster, timeout: float = 2.0) -> bool:
    """Whether a client could work with the cluster now.

    On a secure cluster: the test user signs in with SCRAM over TLS, and the client
    certificate is accepted on the mutual-TLS listener, both trusting only its CA.
    """
    if not c.secure:
        return broker_count(c.host, c.port, timeout) > 0
    try:
        login = (TEST_USER, load_passwords(c).user)
        sasl, mtls = tls_context(c), tls_context(c, client_certificate=True)
    except (LauncherError, OSError):
        return False
    return (
        broker_count(c.host, c.port, timeout, tls=sasl, login=login) > 0
        and broker_count(c.host, c.mtls_port, timeout, tls=mtls) > 0
    )


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


def write_config(c: Cluster, passwords: Passwords | None = None) -> None:
    c.home.mkdir(parents=True, exist_ok=True)
    c.config_file.write_text(server_properties(c, passwords))


def server_properties(c: Cluster, passwords: Passwords | None = None) -> str:
    """The broker's config: one node that is broker and KRaft controller at once."""
    if c.secure and passwords is None:
        raise LauncherError(f"{c.name}: a secure cluster's config needs its passwords")
    listeners = secure_listeners(c, passwords) if passwords is not None else plaintext_listeners(c)
    return "\n".join(
        [
            "# written by tools/kafka/localkafka.py; a single-node KRaft cluster for tests",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{c.host}:{c.controller_port}",
            *listeners,
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


def plaintext_listeners(c: Cluster) -> list[str]:
    return [
        f"listeners=PLAINTEXT://{c.host}:{c.port},CONTROLLER://{c.host}:{c.controller_port}",
        f"advertised.listeners=PLAINTEXT://{c.host}:{c.port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    ]


def secure_listeners(c: Cluster, passwords: Passwords) -> list[str]:
    """Nothing in clear text: SASL_SSL for clients and between brokers, SSL with client
    certificates, and mutual TLS between the broker and its controller.

    No authorizer: authentication is what the secure cluster is for, not ACLs.
    """
    admin = f'username="{ADMIN_USER}" password="{passwords.admin}"'
    plain_users = f'user_{ADMIN_USER}="{passwords.admin}" user_{TEST_USER}="{passwords.user}"'
    return [
        f"listeners=SASL_SSL://{c.host}:{c.port},SSL://{c.host}:{c.mtls_port},"
        f"CONTROLLER://{c.host}:{c.controller_port}",
        f"advertised.listeners=SASL_SSL://{c.host}:{c.port},SSL://{c.host}:{c.mtls_port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=SASL_SSL",
        "listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL,SSL:SSL",
        f"sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={SCRAM_LOGIN} required {admin};",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={PLAIN_LOGIN} required {plain_users};",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={c.tls_dir / 'broker-keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={c.tls_dir / 'ca.pem'}",
        "listener.name.ssl.ssl.client.auth=required",
        "listener.name.controller.ssl.client.auth=required",
    ]


def format_storage(c: Cluster, cp: str, passwords: Passwords | None = None) -> None:
    if formatted(c):
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
            *(scram_arguments(passwords) if passwords is not None else []),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise LauncherError(f"formatting {c.name}'s storage failed:\n{result.stdout}{result.stderr}")


def scram_arguments(passwords: Passwords) -> list[str]:
    """StorageTool options that put the SCRAM users into the new cluster's first metadata."""
    arguments = []
    for user, password in ((TEST_USER, passwords.user), (ADMIN_USER, passwords.admin)):
        arguments += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
    return arguments


def check_ports(c: Cluster) -> None:
    """Fail early, naming the port, when something else holds one of the cluster's ports."""
    for port in c.ports:
        deadline = time.monotonic() + 10
        while not port_is_free(c.host, port) and held_by_a_client(port) and time.monotonic() < deadline:
            time.sleep(0.2)  # a connection's end: it goes away when the connection closes
        if not port_is_free(c.host, port):
            if held_by_a_client(port):
                raise LauncherError(
                    f"{c.name}: port {c.host}:{port} is the local end of a connection (no process "
                    f"listens there; Linux picks such ports from 32768-60999). Move the cluster below "
                    f"32768 with {CLUSTERS[c.name][0]}=host:port. Log file: {c.log_file}"
                )
            holder = describe_pid(listener_pid(port))
            raise LauncherError(
                f"{c.name}: port {c.host}:{port} is taken by {holder}, not by this launcher. "
                f"Stop that process or move the cluster with {CLUSTERS[c.name][0]}=host:port "
                f"(the controller uses port+1{', mutual TLS port+2' if c.secure else ''}). "
                f"Log file: {c.log_file}"
            )


def start(c: Cluster, cp: str) -> str:
    pid = running_pid(c)
    if pid is not None:
        wait_ready(c, pid)
        return f"{c.name}: already running on {c.bootstrap} (pid {pid})"
    check_ports(c)
    passwords = prepare_secure(c) if c.secure else None
    write_config(c, passwords)
    format_storage(c, cp, passwords)
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
        if is_ready(c, timeout=1.0):
            return
        exited = process.poll() if process else (None if _alive(pid) else "?")
        if exited is not None:
            raise LauncherError(
                f"{c.name}: the broker for {c.bootstrap} exited (code {exited}) before it was ready. "
                f"Log file: {c.log_file}\n{tail(c.log_file, 25)}"
            )
        time.sleep(0.2)
    raise LauncherError(
        f"{c.name}: no {'signed-in ' if c.secure else ''}metadata answer from {c.bootstrap} "
        f"after {READY_TIMEOUT:.0f}s "
        f"(pid {pid} is still up). "
        f"Log file: {c.log_file}\n{tail(c.log_file, 25)}"
    )


def end_group(pid: int, how: signal.Signals, timeout: float) -> None:
    """Signal ``pid``'s process group; kill it if it has not ended within ``timeout`` s."""
    os.killpg(pid, how)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)


def stop(c: Cluster, kill: bool = False, timeout: float = 30.0) -> str:
    pid = running_pid(c)
    if pid is None:
        c.pid_file.unlink(missing_ok=True)
        return f"{c.name}: not running"
    end_group(pid, signal.SIGKILL if kill else signal.SIGTERM, timeout)
    c.pid_file.unlink(missing_ok=True)
    return f"{c.name}: stopped (pid {pid}{', killed' if kill else ''})"


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"(no log yet at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- MirrorMaker 2: the primary replicated to the secondary -----------------------------

MIRROR_MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
MIRROR_STARTED = "Kafka MirrorMaker started"  # what MirrorMaker logs once its connectors are set up
POLICIES = {
    "default": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",  # <source>.<topic>
    "identity": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",  # <topic>
}


@dataclass(frozen=True)
class Mirror:
    """One MirrorMaker 2 process (dedicated mode) replicating ``source`` to ``target``.

    Its connectors keep their offsets, configs and status in ``mm2-*.internal`` topics on the
    clusters; on disk it has only its properties, log and pid, under ``$AIOSTREAM_KAFKA_STATE/mirror``.
    """

    source: Cluster
    target: Cluster
    topics: str = ".*"  # regular expressions, as MirrorMaker takes them
    groups: str = ".*"
    policy: str = "default"
    checkpoint_interval: float = 1.0  # seconds: emit.checkpoints.interval.seconds and the rest

    @property
    def home(self) -> Path:
        return STATE / "mirror"

    @property
    def config_file(self) -> Path:
        return self.home / "mm2.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "mirror.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "pid"

    def properties(self) -> str:
        """mm2.properties: one flow, every internal topic with replication factor 1 (one broker)."""
        if self.policy not in POLICIES:
            raise LauncherError(
                f"unknown replication policy {self.policy!r}; choose one of: {', '.join(POLICIES)}"
            )
        if self.source.secure or self.target.secure:
            raise LauncherError(
                "the local MirrorMaker replicates plaintext clusters only (primary, secondary)"
            )
        flow = f"{self.source.name}->{self.target.name}"
        interval = f"{self.checkpoint_interval:g}"
        return "\n".join(
            [
                "# written by tools/kafka/localkafka.py: MirrorMaker 2 in dedicated mode, for tests",
                f"clusters = {self.source.name}, {self.target.name}",
                f"{self.source.name}.bootstrap.servers = {self.source.bootstrap}",
                f"{self.target.name}.bootstrap.servers = {self.target.bootstrap}",
                f"{flow}.enabled = true",
                f"{flow}.topics = {self.topics}",
                f"{flow}.groups = {self.groups}",
                f"replication.policy.class = {POLICIES[self.policy]}",
                # the source's alias, which the identity policy cannot read from topic names
                f"replication.policy.source.cluster.alias = {self.source.name}",
                "replication.factor = 1",
                "checkpoints.topic.replication.factor = 1",
                "heartbeats.topic.replication.factor = 1",
                "offset-syncs.topic.replication.factor = 1",
                "offset.storage.replication.factor = 1",
                "status.storage.replication.factor = 1",
                "config.storage.replication.factor = 1",
                f"emit.checkpoints.interval.seconds = {interval}",
                f"emit.heartbeats.interval.seconds = {interval}",
                f"refresh.topics.interval.seconds = {interval}",
                f"refresh.groups.interval.seconds = {interval}",
                f"sync.topic.configs.interval.seconds = {interval}",
                # The app's failover commits its own translation of the checkpoints; MirrorMaker
                # writing translated offsets to the target's groups too would hide a wrong one.
                "sync.group.offsets.enabled = false",
                # On the target, where failover can read them with the source gone: every offset
                # sync, where MirrorMaker's checkpoints keep fewer the further back they lie.
                "offset-syncs.topic.location = target",
                "",
            ]
        )


def mirror(args: argparse.Namespace) -> Mirror:
    return Mirror(
        source=cluster(args.source),
        target=cluster(args.target),
        topics=args.topics,
        groups=args.groups,
        policy=args.policy,
        checkpoint_interval=args.interval,
    )


def mirror_pid(m: Mirror) -> int | None:
    """The running MirrorMaker's pid: the pid file's, or any JVM running its properties (/proc)."""
    text = m.pid_file.read_text().strip() if m.pid_file.exists() else ""
    recorded = int(text) if text.isdigit() else None
    if not Path("/proc/self").exists():
        return recorded if recorded is not None and _alive(recorded) else None
    marker = str(m.config_file).encode()
    for pid in [
        *([recorded] if recorded is not None else []),
        *(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()),
    ]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if MIRROR_MAIN.encode() in cmdline and marker in cmdline and _alive(pid):
            return pid
    return None


def start_mirror(m: Mirror) -> str:
    """Start MirrorMaker unless it runs with these properties already; wait until it has started."""
    wanted = m.properties()
    pid = mirror_pid(m)
    if pid is not None:
        if m.config_file.read_text() == wanted:
            return f"mirror: already running {m.source.name}->{m.target.name} (pid {pid})"
        raise LauncherError(
            f"mirror: MirrorMaker (pid {pid}) runs with other settings ({m.config_file}); "
            f"`localkafka.py mirror down` first"
        )
    for c in (m.source, m.target):
        if not is_ready(c):
            raise LauncherError(
                f"mirror: cluster {c.name} ({c.bootstrap}) is not up; `localkafka.py up` first"
            )
    cp = classpath(MIRROR_POM)
    m.home.mkdir(parents=True, exist_ok=True)
    m.config_file.write_text(wanted)
    heap = os.environ.get("KAFKA_HEAP_OPTS", DEFAULT_HEAP).split()
    command = [
        java(), *heap, "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", cp, MIRROR_MAIN, str(m.config_file),
    ]  # fmt: skip
    with open(m.log_file, "ab") as log:
        log.write(
            f"\n==== starting MirrorMaker {m.source.name}->{m.target.name} at {time.ctime()} ====\n".encode()
        )
        offset = log.tell()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    m.pid_file.write_text(str(process.pid))
    started = time.monotonic()
    deadline = started + READY_TIMEOUT
    while time.monotonic() < deadline:
        with open(m.log_file, "rb") as log:
            log.seek(offset)
            if MIRROR_STARTED.encode() in log.read():
                return (
                    f"mirror: {m.source.name}->{m.target.name} topics={m.topics!r} groups={m.groups!r} "
                    f"policy={m.policy} started (pid {process.pid}) in {time.monotonic() - started:.1f}s"
                )
        if process.poll() is not None:
            raise LauncherError(
                f"mirror: MirrorMaker exited (code {process.returncode}) before it started. "
                f"Log file: {m.log_file}\n{tail(m.log_file, 25)}"
            )
        time.sleep(0.2)
    raise LauncherError(
        f"mirror: MirrorMaker (pid {process.pid}) did not start within {READY_TIMEOUT:.0f}s. "
        f"Log file: {m.log_file}\n{tail(m.log_file, 25)}"
    )


def stop_mirror(m: Mirror, timeout: float = 30.0) -> str:
    pid = mirror_pid(m)
    if pid is None:
        m.pid_file.unlink(missing_ok=True)
        return "mirror: not running"
    end_group(pid, signal.SIGTERM, timeout)
    m.pid_file.unlink(missing_ok=True)
    return f"mirror: stopped (pid {pid})"


def cmd_mirror(args: argparse.Namespace) -> None:
    """MirrorMaker 2 between two local clusters: up (idempotent), down, status, logs."""
    m = mirror(args)
    if args.action == "up":
        print(start_mirror(m), flush=True)
    elif args.action == "down":
        print(stop_mirror(m), flush=True)
    elif args.action == "status":
        pid = mirror_pid(m)
        print(f"mirror     {'running' if pid else 'stopped':<9} pid={pid or '-':<8} log={m.log_file}")
        if pid is None:
            raise SystemExit(3)
    else:
        print(f"==> {m.log_file} <==")
        print(tail(m.log_file, args.lines))


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
            if c.secure and not formatted(c):
                openssl()  # before Maven, which may take a while
    cp = classpath()
    parallel(lambda c: start(c, cp), clusters)


def cmd_down(args: argparse.Namespace) -> None:
    clusters = selected(args.names, everything=True)
    parallel(stop, clusters)
    for c in clusters:
        remove(c.disposable)


def cmd_start(args: argparse.Namespace) -> None:
    cmd_up(args)


def cmd_stop(args: argparse.Namespace) -> None:
    parallel(lambda c: stop(c, kill=args.kill), selected(args.names, everything=True))


def cmd_status(args: argparse.Namespace) -> None:
    """Every cluster; a stopped on-demand one (secure) fails the exit code only when named."""
    all_ready = True
    for c in selected(args.names, everything=True):
        pid = running_pid(c)
        ready = is_ready(c)
        if args.names or c.name in DEFAULT_CLUSTERS or pid is not None:
            all_ready &= pid is not None and ready
        state = "ready" if pid and ready else "starting" if pid else "stopped"
        extra = f" credentials={c.client_file}" if c.client_file.exists() else ""
        print(f"{c.name:<10} {c.bootstrap:<18} {state:<9} pid={pid or '-':<8} log={c.log_file}{extra}")
    if not all_ready:
        raise SystemExit(3)


def cmd_logs(args: argparse.Namespace) -> None:
    clusters = selected(args.names, everything=True)
    for c in clusters if args.names else [c for c in clusters if c.log_file.exists()]:
        print(f"==> {c.log_file} <==")
        print(tail(c.log_file, args.lines))


def cmd_run(args: argparse.Namespace) -> None:
    """Run a command with both clusters up; stop afterwards the ones this started."""
    command = args.names[1:] if args.names[:1] == ["--"] else args.names
    if not command:
        raise LauncherError("run needs a command, for example: localkafka.py run -- pytest")
    clusters = selected([])
    missing = [c for c in clusters if running_pid(c) is None and not is_ready(c)]
    try:
        if missing:
            cmd_up(argparse.Namespace(names=[c.name for c in missing]))
        code = subprocess.call(command)
    finally:  # also when only some of them came up
        if missing:
            cmd_down(argparse.Namespace(names=[c.name for c in missing]))
    raise SystemExit(code)


def cmd_credentials(args: argparse.Namespace) -> None:
    """Print a secure cluster's client.json, for tests and examples to find their way in."""
    c = cluster(args.name)
    if not c.secure:
        raise LauncherError(f"{c.name} has no credentials: it is a plaintext cluster on {c.bootstrap}")
    if not c.client_file.exists():
        raise LauncherError(f"{c.name} has no credentials yet; start it with: localkafka.py up {c.name}")
    print(c.client_file.read_text(), end="")


def cmd_fetch(args: argparse.Namespace) -> None:
    print(f"{len(classpath().split(os.pathsep))} jars on the classpath")


def add_mirror_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("action", choices=["up", "down", "status", "logs"])
    sub.add_argument("--source", default="primary", help="the cluster replicated (default: primary)")
    sub.add_argument(
        "--target", default="secondary", help="the cluster holding the replica (default: secondary)"
    )
    sub.add_argument("--topics", default=".*", metavar="REGEX", help="topics replicated (default: all)")
    sub.add_argument(
        "--groups", default=".*", metavar="REGEX", help="consumer groups checkpointed (default: all)"
    )
    sub.add_argument("--policy", default="default", choices=list(POLICIES), help="topic names on the target")
    sub.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="checkpoints and heartbeats (default: 1)",
    )
    sub.add_argument("-n", "--lines", type=int, default=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function, help_text in [
        ("up", cmd_up, "start clusters (primary and secondary by default) and wait until they are ready"),
        ("down", cmd_down, "stop clusters (all by default) and delete their data"),
        ("start", cmd_start, "start stopped clusters, keeping their data"),
        ("stop", cmd_stop, "stop clusters (all by default), keeping their data (for outage tests)"),
        ("status", cmd_status, "show each cluster; exit 3 unless all are ready"),
        ("logs", cmd_logs, "print the end of each cluster's log"),
        ("credentials", cmd_credentials, "print what a client of the secure cluster needs, as JSON"),
        ("fetch", cmd_fetch, "resolve the jars with Maven and exit"),
        ("run", cmd_run, "run -- COMMAND with both clusters up, stopping afterwards those it started"),
        ("mirror", cmd_mirror, "MirrorMaker 2 replicating primary to secondary: up, down, status, logs"),
    ]:
        sub = commands.add_parser(name, help=help_text)
        if name == "mirror":
            add_mirror_arguments(sub)
        elif name == "run":
            sub.add_argument("names", nargs=argparse.REMAINDER, metavar="-- COMMAND")
        elif name == "credentials":
            sub.add_argument("name", nargs="?", default=SECURE_CLUSTERS[0], metavar="NAME")
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
