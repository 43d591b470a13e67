"""TLS and SASL settings: checked when the app is declared, turned into aiokafka's arguments.

aiokafka takes TLS only as an ``ssl.SSLContext``; users write file paths (``ssl_cafile`` or
librdkafka's ``ssl.ca.location``). The context is built once, up front, so a missing file
or a key password that does not open the key is a ``ConfigError`` naming the cluster and
the setting before anything connects, and never one that shows the password.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context

from aiostream_kafka.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")

#: Our names for TLS material given as files (aiokafka itself only takes ``ssl_context``).
TLS_FILE_KEYS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
TLS_KEYS = frozenset({*TLS_FILE_KEYS, "ssl_password", "ssl_check_hostname", "ssl_context"})
SASL_KEYS = frozenset(
    {
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "sasl_oauth_token_provider",
    }
)

#: Values that must never be shown: not in ``info``, logs, errors, reports or ``repr()``.
SECRET_KEYS = frozenset({"sasl_plain_password", "sasl_oauth_token_provider", "ssl_password"})

#: Java-only settings, with what a Python client needs instead.
UNSUPPORTED = {
    "ssl_truststore_location": "Python's ssl reads PEM, not JKS/PKCS12 stores: export the CA "
    "(keytool -exportcert -rfc) and set ssl.ca.location (ssl_cafile)",
    "ssl_keystore_location": "Python's ssl reads PEM, not JKS/PKCS12 stores: export the client "
    "certificate and key to PEM and set ssl.certificate.location and ssl.key.location",
    "ssl_truststore_password": "see ssl.truststore.location: use a PEM CA file (ssl.ca.location)",
    "ssl_keystore_password": "see ssl.keystore.location: the key's own password is ssl.key.password",
}

_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_jaas(value: Any, where: str) -> dict[str, str]:
    """``sasl.jaas.config`` as Java users write it: the username and password it carries."""
    options = dict(_JAAS_OPTION.findall(value)) if isinstance(value, str) else {}
    if "username" not in options or "password" not in options:
        raise ConfigError(
            f'{where}: sasl.jaas.config must carry username="..." and password="..." '
            f'(e.g. ScramLoginModule required username="app" password="...";), '
            f"or set sasl.username and sasl.password instead"
        )
    return {"sasl_plain_username": options["username"], "sasl_plain_password": options["password"]}


def check(identity: dict[str, Any], where: str) -> ssl.SSLContext | None:
    """Refuse settings that cannot work together, naming what to change; fill in defaults.
    Returns the TLS context to build from files, unless the user gave one (or TLS is off)."""
    protocol = identity["security_protocol"]  # one of PROTOCOLS, as config.RULES checked
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    given_sasl = sorted(SASL_KEYS & identity.keys())
    given_tls = sorted(TLS_KEYS & identity.keys())
    if given_sasl and not sasl:
        raise ConfigError(
            f"{where}: {', '.join(given_sasl)} only apply with security_protocol SASL_SSL or "
            f"SASL_PLAINTEXT, and it is {protocol}"
        )
    if given_tls and not tls:
        raise ConfigError(
            f"{where}: {', '.join(given_tls)} only apply with security_protocol SSL or SASL_SSL, "
            f"and it is {protocol}"
        )
    if sasl:
        mechanism = identity.setdefault("sasl_mechanism", "PLAIN")
        if mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            missing = [k for k in ("sasl_plain_username", "sasl_plain_password") if not identity.get(k)]
            if missing:
                raise ConfigError(
                    f"{where}: SASL {mechanism} needs a username and a password; missing "
                    f"{' and '.join(missing)} (sasl.username / sasl.password)"
                )
    if "ssl_context" in identity:
        files = sorted(k for k in given_tls if k not in ("ssl_context", "ssl_check_hostname"))
        if files:
            raise ConfigError(f"{where}: give ssl_context or {', '.join(files)}, not both")
        if not isinstance(identity["ssl_context"], ssl.SSLContext):
            raise ConfigError(f"{where}: ssl_context must be an ssl.SSLContext")
    for key in TLS_FILE_KEYS:
        if key in identity:
            identity[key] = _readable(identity[key], key, where)
    if "ssl_keyfile" in identity and "ssl_certfile" not in identity:
        raise ConfigError(f"{where}: ssl_keyfile needs the client certificate too (ssl_certfile)")
    if "ssl_password" in identity and "ssl_keyfile" not in identity and "ssl_certfile" not in identity:
        raise ConfigError(f"{where}: ssl_password is the client key's password; set ssl_keyfile as well")
    if tls and "ssl_context" not in identity:
        return ssl_context(identity, where)
    return None


def ssl_context(identity: Mapping[str, Any], where: str) -> ssl.SSLContext:
    """The client's TLS context from the file settings (system CAs when no CA file is given)."""
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=identity.get("ssl_cafile"),
            certfile=identity.get("ssl_certfile"),
            keyfile=identity.get("ssl_keyfile"),
            password=identity.get("ssl_password"),
        )
    except ssl.SSLError as error:
        # The reason, never the password: OpenSSL's text names neither file nor secret.
        hint = (
            "ssl_password does not open ssl_keyfile, or they do not match ssl_certfile"
            if "ssl_certfile" in identity
            else "ssl_cafile is not a PEM CA certificate"
        )
        raise ConfigError(f"{where}: cannot load the TLS files ({hint}): {error.reason or error}") from None
    if identity.get("ssl_check_hostname") is False:
        context.check_hostname = False
    return context


def _readable(value: Any, key: str, where: str) -> str:
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise ConfigError(f"{where}: {key} {str(value)!r} is not a file")
    try:
        path.open("rb").close()
    except OSError as error:
        raise ConfigError(f"{where}: {key} {str(value)!r} cannot be read: {error.strerror}") from None
    return str(path.resolve())
