"""TLS and SASL settings: what they are, and aiokafka's TLS context built from them.

aiokafka takes TLS only as an ``ssl.SSLContext``; users write file paths (``ssl_cafile`` or
librdkafka's ``ssl.ca.location``). The context is built once, up front, so a key password
that does not open the key is a ``ConfigError`` naming the cluster and the setting before
anything connects, and never one that shows the password. ``contracts.security`` checks
the settings before that.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
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


def context_for(identity: Mapping[str, Any], where: str) -> ssl.SSLContext | None:
    """The TLS context to build from the file settings, unless the user gave one (or TLS is off)."""
    if identity["security_protocol"].endswith("SSL") and "ssl_context" not in identity:
        return ssl_context(identity, where)
    return None
