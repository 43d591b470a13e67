"""The local-cluster launcher fails with errors that say what to fix."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port
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


def test_a_taken_port_is_named_with_its_holder_and_the_log_file(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        port = free_port()
        squatter.bind(("127.0.0.1", port))
        squatter.listen()

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
    assert "unknown cluster 'tertiary'; choose one of: primary, secondary, secure" in result.stderr


def test_status_of_stopped_clusters_exits_non_zero(tmp_path: Path) -> None:
    result = run_launcher(tmp_path, free_port(), "status", "primary")

    assert result.returncode == 3
    assert "stopped" in result.stdout


@pytest.mark.slow
def test_run_starts_a_cluster_for_a_command_and_leaves_no_jvm_behind(tmp_path: Path) -> None:
    port = free_ports(2)
    probe = (
        "import sys; sys.path.insert(0, 'tools/kafka'); import localkafka; "
        f"sys.exit(0 if localkafka.broker_count('127.0.0.1', {port}) == 1 else 9)"
    )
    secondary = f"127.0.0.1:{free_ports(2)}"

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
    monkeypatch.setattr(uuid, "uuid4", lambda: dash_id)
    cluster = localkafka.cluster("primary")
    localkafka.write_config(cluster)

    localkafka.format_storage(cluster, localkafka.classpath())

    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in (cluster.data_dir / "meta.properties").read_text()


@pytest.mark.slow
def test_another_process_can_stop_a_broker_that_run_started(tmp_path: Path) -> None:
    """The outage tests do this: 'run' owns the JVM, a separate 'stop' must still see it exit."""
    port = free_ports(2)
    stop_from_elsewhere = (
        "import subprocess, sys; "
        f"stop = [sys.executable, {str(LAUNCHER)!r}, 'stop', 'primary']; "
        "sys.exit(subprocess.run(stop, timeout=60).returncode)"
    )
    secondary = f"127.0.0.1:{free_ports(2)}"

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


# --- the secure cluster -------------------------------------------------------------------

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def free_ports(count: int) -> int:
    """A port whose next count - 1 ports are free as well (controller, mutual TLS)."""
    while True:
        port = free_port()
        try:
            for offset in range(1, count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


@pytest.fixture
def secure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> localkafka.Cluster:
    """The secure cluster with its state under tmp_path, on ports 40000-40002 (nothing is started)."""
    monkeypatch.setattr(localkafka, "STATE", tmp_path)
    monkeypatch.setenv("AIOSTREAM_KAFKA_SECURE", "127.0.0.1:40000")
    return localkafka.cluster("secure")


PASSWORDS = localkafka.Passwords(user="user-secret", admin="admin-secret", key="key-secret")


def test_up_without_names_leaves_the_secure_cluster_alone() -> None:
    assert [c.name for c in localkafka.selected([])] == ["primary", "secondary"]
    assert [c.name for c in localkafka.selected([], everything=True)] == ["primary", "secondary", "secure"]
    assert [c.name for c in localkafka.selected(["secure"])] == ["secure"]


def test_only_the_secure_cluster_is_secure_and_it_uses_three_ports(secure: localkafka.Cluster) -> None:
    assert secure.secure
    assert secure.ports == (40000, 40001, 40002)
    assert not localkafka.cluster("primary").secure
    assert len(localkafka.cluster("primary").ports) == 2


def test_the_secure_cluster_listens_for_nothing_in_clear_text(secure: localkafka.Cluster) -> None:
    config = properties(localkafka.server_properties(secure, PASSWORDS))

    assert config["listeners"] == (
        "SASL_SSL://127.0.0.1:40000,SSL://127.0.0.1:40002,CONTROLLER://127.0.0.1:40001"
    )
    assert config["advertised.listeners"] == "SASL_SSL://127.0.0.1:40000,SSL://127.0.0.1:40002"
    assert config["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL,SSL:SSL"
    assert config["inter.broker.listener.name"] == "SASL_SSL"
    assert config["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,PLAIN"
    assert config["listener.name.ssl.ssl.client.auth"] == "required"
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert "PLAINTEXT" not in localkafka.server_properties(secure, PASSWORDS)


def test_the_secure_cluster_reads_pem_files_from_its_state(secure: localkafka.Cluster) -> None:
    config = properties(localkafka.server_properties(secure, PASSWORDS))

    assert config["ssl.keystore.type"] == config["ssl.truststore.type"] == "PEM"
    assert config["ssl.keystore.location"] == str(secure.tls_dir / "broker-keystore.pem")
    assert config["ssl.truststore.location"] == str(secure.tls_dir / "ca.pem")
    assert "ssl.keystore.password" not in config  # Kafka refuses one with a PEM key store


def test_plain_users_come_from_the_jaas_config_and_the_broker_signs_in_with_scram(
    secure: localkafka.Cluster,
) -> None:
    config = properties(localkafka.server_properties(secure, PASSWORDS))

    plain = config["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert plain.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert 'user_aiostream="user-secret"' in plain
    assert plain.endswith(";")
    scram = config["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert 'username="admin" password="admin-secret";' in scram


def test_a_secure_config_without_passwords_is_refused(secure: localkafka.Cluster) -> None:
    with pytest.raises(localkafka.LauncherError, match="needs its passwords"):
        localkafka.server_properties(secure)


def test_the_plaintext_clusters_keep_their_plaintext_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localkafka, "STATE", tmp_path)
    config = properties(localkafka.server_properties(localkafka.cluster("primary")))

    assert config["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert not any(key.startswith(("ssl.", "sasl.")) for key in config)


def test_storage_format_creates_both_scram_users() -> None:
    assert localkafka.scram_arguments(PASSWORDS) == [
        "--add-scram",
        "SCRAM-SHA-512=[name=aiostream,password=user-secret]",
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=admin-secret]",
    ]


@pytest.mark.parametrize(
    ("hash_name", "nonce", "server_first", "expected"),
    [
        (  # RFC 5802, section 5
            "sha1",
            "fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        ),
        (  # RFC 7677, section 3
            "sha256",
            "rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        ),
    ],
)
def test_the_readiness_check_computes_scram_proofs_as_the_rfcs_do(
    hash_name: str, nonce: str, server_first: str, expected: str
) -> None:
    first_bare = f"n=user,r={nonce}"

    assert localkafka.scram_client_final(first_bare, server_first, "pencil", nonce, hash_name) == expected


def test_a_server_nonce_that_does_not_extend_ours_is_refused() -> None:
    with pytest.raises(ConnectionError, match="nonce"):
        localkafka.scram_client_final(
            "n=user,r=abc", "r=xyz123,s=QSXCR+Q6sek8bf92,i=4096", "p", "abc", "sha512"
        )


def test_the_broker_certificate_names_a_configured_host_as_well() -> None:
    assert localkafka.subject_alt_names("127.0.0.1") == "IP:127.0.0.1,DNS:localhost"
    assert localkafka.subject_alt_names("kafka.test") == "IP:127.0.0.1,DNS:localhost,DNS:kafka.test"
    assert localkafka.subject_alt_names("::1") == "IP:127.0.0.1,DNS:localhost,IP:::1"


def test_without_openssl_up_secure_says_so_before_anything_else(tmp_path: Path) -> None:
    result = run_launcher(
        tmp_path,
        free_port(),
        "up",
        "secure",
        PATH=str(tmp_path / "empty"),
        AIOSTREAM_KAFKA_SECURE=f"127.0.0.1:{free_ports(3)}",
    )

    assert result.returncode == 1
    assert "needs `openssl`" in result.stderr
    assert not (tmp_path / "secure" / "tls").exists()


def test_without_openssl_preparing_the_secure_cluster_fails_clearly(
    secure: localkafka.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)

    with pytest.raises(localkafka.LauncherError, match="openssl"):
        localkafka.prepare_secure(secure)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> dict[str, object]:
    """A TLS handshake over loopback; returns the certificate the server saw from the client.

    The client's failure is raised; the server's side of it is expected then and ignored.
    """
    seen: dict[str, object] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    seen.update(tls.getpeercert() or {})
                    tls.recv(1)
            except OSError:
                conn.close()

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=5) as raw,
                client.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                tls.sendall(b"x")
        finally:
            thread.join(timeout=5)
    return seen


@needs_openssl
@pytest.mark.parametrize("server_hostname", ["127.0.0.1", "localhost"])
def test_the_generated_certificates_make_a_mutual_tls_handshake(
    secure: localkafka.Cluster, server_hostname: str
) -> None:
    localkafka.prepare_secure(secure)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(secure.tls_dir / "broker-keystore.pem")  # the key, then the chain
    server.load_verify_locations(secure.tls_dir / "ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED

    client_certificate = handshake(
        server, localkafka.tls_context(secure, client_certificate=True), server_hostname
    )

    assert client_certificate["subject"] == ((("commonName", "aiostream-kafka secure client"),),)


@needs_openssl
def test_a_client_without_the_throwaway_ca_does_not_trust_the_broker(secure: localkafka.Cluster) -> None:
    localkafka.prepare_secure(secure)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(secure.tls_dir / "broker-keystore.pem")

    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, ssl.create_default_context(), "127.0.0.1")


@needs_openssl
def test_the_encrypted_client_key_needs_the_key_password(secure: localkafka.Cluster) -> None:
    localkafka.prepare_secure(secure)
    settings = json.loads(secure.client_file.read_text())
    context = ssl.create_default_context()

    assert Path(settings["encrypted_keyfile"]).read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY")
    context.load_cert_chain(settings["certfile"], settings["encrypted_keyfile"], settings["key_password"])
    with pytest.raises(ssl.SSLError):
        context.load_cert_chain(settings["certfile"], settings["encrypted_keyfile"], "wrong")


@needs_openssl
def test_client_json_says_everything_a_client_needs(secure: localkafka.Cluster) -> None:
    passwords = localkafka.prepare_secure(secure)

    settings = json.loads(secure.client_file.read_text())

    assert settings == {
        "sasl_ssl_bootstrap_servers": "127.0.0.1:40000",
        "ssl_bootstrap_servers": "127.0.0.1:40002",
        "sasl_mechanisms": ["SCRAM-SHA-512", "PLAIN"],
        "username": "aiostream",
        "password": passwords.user,
        "cafile": str(secure.tls_dir / "ca.pem"),
        "certfile": str(secure.tls_dir / "client.pem"),
        "keyfile": str(secure.tls_dir / "client.key"),
        "encrypted_keyfile": str(secure.tls_dir / "client-encrypted.key"),
        "key_password": passwords.key,
    }
    assert all(Path(str(settings[key])).exists() for key in ("cafile", "certfile", "keyfile"))
    assert secure.client_file.stat().st_mode & 0o077 == 0


@needs_openssl
def test_passwords_are_random_per_state_and_kept_while_the_data_is(secure: localkafka.Cluster) -> None:
    first = localkafka.prepare_secure(secure)
    assert len({first.user, first.admin, first.key}) == 3
    assert localkafka.prepare_secure(secure) != first  # not formatted yet: a fresh state

    kept = localkafka.prepare_secure(secure)
    secure.data_dir.mkdir()
    (secure.data_dir / "meta.properties").write_text("cluster.id=x\n")
    assert localkafka.prepare_secure(secure) == kept


def test_credentials_explain_what_is_missing(tmp_path: Path) -> None:
    before_start = run_launcher(tmp_path, free_port(), "credentials")
    plaintext = run_launcher(tmp_path, free_port(), "credentials", "primary")

    assert before_start.returncode == 1
    assert "start it with: localkafka.py up secure" in before_start.stderr
    assert plaintext.returncode == 1
    assert "plaintext cluster" in plaintext.stderr


def test_credentials_print_client_json(tmp_path: Path) -> None:
    (tmp_path / "secure").mkdir()
    (tmp_path / "secure" / "client.json").write_text('{"username": "aiostream"}\n')

    result = run_launcher(tmp_path, free_port(), "credentials", "secure")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"username": "aiostream"}


def test_down_without_names_deletes_the_secure_state_too(tmp_path: Path) -> None:
    home = tmp_path / "secure"
    for directory in ("data", "tls"):
        (home / directory).mkdir(parents=True)
    for name in ("client.json", "passwords.json", "kafka.log", "tls/ca.pem"):
        (home / name).write_text("x")

    result = run_launcher(tmp_path, free_port(), "down", AIOSTREAM_KAFKA_SECURE=f"127.0.0.1:{free_ports(3)}")

    assert result.returncode == 0, result.stderr
    assert "secure: not running" in result.stdout
    assert sorted(path.name for path in home.iterdir()) == ["kafka.log"]


@pytest.mark.slow
@needs_openssl
def test_up_secure_returns_once_a_signed_in_tls_client_gets_metadata(tmp_path: Path) -> None:
    port = free_ports(3)
    env = {"AIOSTREAM_KAFKA_SECURE": f"127.0.0.1:{port}"}
    try:
        up = run_launcher(tmp_path, free_port(), "up", "secure", **env)
        assert up.returncode == 0, up.stderr
        settings = json.loads(run_launcher(tmp_path, free_port(), "credentials", **env).stdout)
        ca = ssl.create_default_context(cafile=settings["cafile"])
        login = (settings["username"], settings["password"])

        assert localkafka.broker_count("127.0.0.1", port, tls=ca, login=login) == 1
        assert localkafka.broker_count("127.0.0.1", port, tls=ca, login=("aiostream", "wrong")) == 0
        assert localkafka.broker_count("127.0.0.1", port, tls=ca) == 0  # Metadata before signing in
        assert localkafka.broker_count("127.0.0.1", port) == 0  # no TLS
        assert localkafka.broker_count("127.0.0.1", port + 2, tls=ca) == 0  # no client certificate
        assert settings["password"] not in (tmp_path / "secure" / "kafka.log").read_text()
    finally:
        down = run_launcher(tmp_path, free_port(), "down", "secure", **env)
    assert down.returncode == 0, down.stderr
    assert "secure: stopped" in down.stdout
    survivors = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert survivors.stdout == ""


def test_a_port_held_by_a_connection_is_told_from_one_a_process_listens_on() -> None:
    """Linux gives outgoing connections local ports from 32768-60999: one of those can hold a
    cluster's port for a moment, which is no process to stop."""
    with socket.socket() as server:
        server_port = free_port()
        server.bind(("127.0.0.1", server_port))
        server.listen()
        with socket.socket() as client:
            client_port = free_port()
            client.bind(("127.0.0.1", client_port))
            client.connect(("127.0.0.1", server_port))

            assert localkafka.held_by_a_client(client_port)
            assert not localkafka.held_by_a_client(server_port)
            assert localkafka.listener_pid(server_port) == os.getpid()


def test_every_default_port_lies_below_the_ephemeral_range() -> None:
    for name, (_, default) in localkafka.CLUSTERS.items():
        port = int(default.rpartition(":")[2])
        assert port + 2 < 32768, name  # the bootstrap port, the controller's and mutual TLS's


def test_mirror_maker_follows_the_clusters_addresses_and_the_callers_topics_groups_and_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIOSTREAM_KAFKA_PRIMARY", "127.0.0.1:25092")
    monkeypatch.setenv("AIOSTREAM_KAFKA_SECONDARY", "127.0.0.1:26092")
    mirror = localkafka.Mirror(
        localkafka.cluster("primary"),
        localkafka.cluster("secondary"),
        topics="orders.*",
        groups="shop",
        policy="identity",
    )
    lines = set(mirror.properties().splitlines())
    assert {
        "clusters = primary, secondary",
        "primary.bootstrap.servers = 127.0.0.1:25092",
        "secondary.bootstrap.servers = 127.0.0.1:26092",
        "primary->secondary.enabled = true",
        "primary->secondary.topics = orders.*",
        "primary->secondary.groups = shop",
        "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        "emit.checkpoints.interval.seconds = 1",
        "offset-syncs.topic.location = target",
        "sync.group.offsets.enabled = false",
    } <= lines
    assert all(line.endswith("= 1") for line in lines if "replication.factor" in line)


def test_mirror_maker_refuses_an_unknown_policy_and_a_secure_cluster() -> None:
    primary, secondary, secure = (localkafka.cluster(n) for n in ("primary", "secondary", "secure"))
    with pytest.raises(localkafka.LauncherError, match="unknown replication policy 'idem'"):
        localkafka.Mirror(primary, secondary, policy="idem").properties()
    with pytest.raises(localkafka.LauncherError, match="plaintext clusters only"):
        localkafka.Mirror(primary, secure).properties()


def test_mirror_up_names_a_cluster_that_is_not_running(tmp_path: Path) -> None:
    result = run_launcher(tmp_path, free_port(), "mirror", "up")
    assert result.returncode == 1
    assert "mirror: cluster primary" in result.stderr
    assert "is not up" in result.stderr
