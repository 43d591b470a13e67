"""TLS and SASL settings per cluster: names users know, mistakes caught before connecting,
secrets never shown."""

from __future__ import annotations

import gc
import io
import logging
import ssl
from typing import Any

import pytest

from aiostream_kafka import App
from aiostream_kafka.config import KafkaSettings
from aiostream_kafka.errors import ConfigError
from tests.helpers import client_certificate_files

KEY_PASSWORD = "key-pass-1f2e3d"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA, and a client certificate with its key in clear and encrypted."""
    return client_certificate_files(tmp_path_factory.mktemp("tls"), KEY_PASSWORD)


def parse(**settings: Any) -> KafkaSettings:
    return KafkaSettings.parse({"bootstrap_servers": "127.0.0.1:9093", **settings}, where="cluster 'vault'")


# --- names --------------------------------------------------------------------------------------


def test_librdkafka_tls_names_become_one_ssl_context_for_aiokafka(pem: dict[str, str]) -> None:
    settings = KafkaSettings.parse(
        {
            "bootstrap.servers": "127.0.0.1:9093",
            "security.protocol": "ssl",
            "ssl.ca.location": pem["ca.pem"],
            "ssl.certificate.location": pem["client.pem"],
            "ssl.key.location": pem["encrypted.key"],
            "ssl.key.password": KEY_PASSWORD,
        },
        where="cluster 'vault'",
    )

    kwargs = settings.connection_kwargs()
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["security_protocol"] == "SSL"
    assert not {"ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password"} & kwargs.keys()


def test_the_hostname_check_follows_the_endpoint_identification_setting(pem: dict[str, str]) -> None:
    on = parse(security_protocol="SSL", ssl_cafile=pem["ca.pem"])
    off = KafkaSettings.parse(
        {
            "bootstrap.servers": "127.0.0.1:9093",
            "security.protocol": "SSL",
            "ssl.ca.location": pem["ca.pem"],
            "ssl.endpoint.identification.algorithm": "",
        },
        where="x",
    )

    assert on.connection_kwargs()["ssl_context"].check_hostname is True
    assert off.connection_kwargs()["ssl_context"].check_hostname is False


def test_a_java_jaas_config_gives_the_username_and_password() -> None:
    settings = KafkaSettings.parse(
        {
            "bootstrap.servers": "127.0.0.1:9093",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "scram-sha-512",
            "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
            'username="app" password="s3cr\\"et";',
        },
        where="x",
    )

    assert settings.identity["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings.identity["sasl_plain_username"] == "app"
    assert settings.identity["sasl_plain_password"] == 's3cr\\"et'


def test_an_ssl_context_of_your_own_is_used_as_it_is() -> None:
    context = ssl.create_default_context()
    settings = parse(security_protocol="SSL", ssl_context=context)

    assert settings.connection_kwargs()["ssl_context"] is context


def test_the_same_tls_files_are_the_same_cluster_so_an_inline_route_joins_it(pem: dict[str, str]) -> None:
    secure = {"bootstrap_servers": "127.0.0.1:9093", "security_protocol": "SSL", "ssl_cafile": pem["ca.pem"]}
    app = App("a", kafka={"bootstrap_servers": "127.0.0.1:9092"}, clusters={"vault": secure})

    @app.route("t", kafka={"bootstrap.servers": "127.0.0.1:9093", "security.protocol": "SSL",
                           "ssl.ca.location": pem["ca.pem"]})  # fmt: skip
    async def handle(messages: Any) -> None:
        pass

    assert [t.cluster for t in app.topology.topics] == ["vault"]


# --- mistakes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"security_protocol": "SASL-SSL"},
            "security_protocol must be one of PLAINTEXT, SSL, SASL_PLAINTEXT",
        ),
        (
            {"sasl_plain_username": "u", "sasl_plain_password": "p"},
            "sasl_plain_password, sasl_plain_username only apply with security_protocol SASL_SSL or "
            "SASL_PLAINTEXT, and it is PLAINTEXT",
        ),
        ({"ssl_cafile": "/nope"}, "ssl_cafile only apply with security_protocol SSL or SASL_SSL"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u"},
            "SASL SCRAM-SHA-512 needs a username and a password; missing sasl_plain_password",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM"},
            "sasl_mechanism must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/no/such/ca.pem"},
            "ssl_cafile '/no/such/ca.pem' is not a file",
        ),
        ({"ssl.truststore.location": "/x.jks"}, "not supported: Python's ssl reads PEM, not JKS"),
        ({"security_protocol": "SSL", "ssl.endpoint.identification.algorithm": "yes"}, "'https' (on) or ''"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl.jaas.config": "nonsense"},
            'username="..." and password',
        ),
    ],
)
def test_security_settings_that_cannot_work_are_refused_naming_what_to_change(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^cluster 'vault': ") as raised:
        parse(**settings)
    assert message in str(raised.value)


def test_files_and_an_ssl_context_together_are_ambiguous(pem: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="give ssl_context or ssl_cafile, not both"):
        parse(security_protocol="SSL", ssl_context=ssl.create_default_context(), ssl_cafile=pem["ca.pem"])


def test_a_key_password_that_does_not_open_the_key_fails_up_front_without_showing_it(
    pem: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match="ssl_password does not open ssl_keyfile") as raised:
        parse(
            security_protocol="SSL",
            ssl_cafile=pem["ca.pem"],
            ssl_certfile=pem["client.pem"],
            ssl_keyfile=pem["encrypted.key"],
            ssl_password="wrong-password-9c8b",
        )
    assert "wrong-password-9c8b" not in str(raised.value)


def test_a_client_key_without_its_certificate_is_refused(pem: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="ssl_keyfile needs the client certificate too"):
        parse(security_protocol="SSL", ssl_keyfile=pem["client.key"])


# --- secrets never shown --------------------------------------------------------------------------


def test_repr_and_redacted_hide_passwords_and_keep_the_rest(pem: dict[str, str]) -> None:
    settings = parse(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username="app",
        sasl_plain_password="sasl-secret-77",
        ssl_cafile=pem["ca.pem"],
        ssl_certfile=pem["client.pem"],
        ssl_keyfile=pem["encrypted.key"],
        ssl_password=KEY_PASSWORD,
    )
    app = App("a", kafka={"bootstrap_servers": "127.0.0.1:9092"}, clusters={"vault": dict(settings.identity)})

    shown = " ".join([repr(settings), str(settings), repr(app.topology), repr(settings.redacted())])
    assert "sasl-secret-77" not in shown
    assert KEY_PASSWORD not in shown
    assert "'sasl_plain_username': 'app'" in shown
    assert settings.redacted()["ssl_password"] == "***"
    assert sorted(settings.secrets()) == sorted(["sasl-secret-77", KEY_PASSWORD])


def sasl_app(password: str) -> App:
    """Declared, never started: its secrets are known from here on."""
    return App(
        "masked",
        kafka={
            "bootstrap_servers": "127.0.0.1:1",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "app",
            "sasl_plain_password": password,
        },
        log_events=False,
    )


def test_a_declared_apps_secrets_are_masked_in_aiokafkas_debug_log_without_starting_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = logging.getLogger("aiokafka.conn")
    app = sasl_app("hunter2-9c1d")  # check, topics, web and app.admin use an app never started
    conn.debug("Request 3: SaslAuthenticateRequest_v1(sasl_auth_bytes=%r)", b"\x00app\x00hunter2-9c1d")
    del app
    gc.collect()
    conn.debug("after: %s", "hunter2-9c1d")

    assert "hunter2-9c1d" not in caplog.records[0].getMessage()
    assert "\\x00app\\x00***" in caplog.records[0].getMessage()
    assert caplog.records[1].getMessage() == "after: hunter2-9c1d"  # only while its settings live


def test_a_secret_in_an_exceptions_text_is_masked_in_the_logged_traceback_too() -> None:
    output = io.StringIO()
    handler = logging.StreamHandler(output)  # any logger, any handler: the user's own, say
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("users.own.module")
    log.addHandler(handler)
    app = sasl_app("hunter2-4b7e")
    try:
        raise ConnectionError(f"login as app with hunter2-4b7e refused by {app.name}")
    except ConnectionError as error:
        log.exception("could not connect: %s", error)
    finally:
        log.removeHandler(handler)

    written = output.getvalue()
    assert "could not connect: login as app with *** refused by masked" in written
    assert "ConnectionError: login as app with *** refused by masked" in written  # the traceback's last line
    assert "hunter2-4b7e" not in written
