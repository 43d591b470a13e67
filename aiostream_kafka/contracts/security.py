"""The contract of a cluster's TLS and SASL settings, taken together.

Each value has been checked on its own (``contracts.cluster``); this refuses combinations
that cannot work (SASL keys without a SASL protocol, TLS files without TLS, a mechanism
without its username and password, a key without its certificate) and files that are
not there, naming what to change and never a secret.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

from aiostream_kafka.errors import ConfigError
from aiostream_kafka.security import SASL_KEYS, TLS_FILE_KEYS, TLS_KEYS

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


def check_security(identity: dict[str, Any], where: str) -> None:
    """Refuse settings that cannot work together, naming what to change; fill in the SASL
    mechanism's default and make the TLS files' paths absolute."""
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


def _readable(value: Any, key: str, where: str) -> str:
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise ConfigError(f"{where}: {key} {str(value)!r} is not a file")
    try:
        path.open("rb").close()
    except OSError as error:
        raise ConfigError(f"{where}: {key} {str(value)!r} cannot be read: {error.strerror}") from None
    return str(path.resolve())
