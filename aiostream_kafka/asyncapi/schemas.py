"""JSON Schemas of payload types, from msgspec, in the dialect AsyncAPI 3.0 reads.

msgspec writes JSON Schema 2020-12; an AsyncAPI Schema Object is draft 07 (plus a
``discriminator`` that is a property name, not OpenAPI's object). Two keywords differ in a
way that changes what validates, so they are rewritten: a tuple's ``prefixItems`` (with
``items: false``) is draft 07's ``items`` list (with ``additionalItems: false``), and a
tagged union's ``discriminator`` keeps only its property name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from aiostream_kafka.errors import ConfigError

REF_TEMPLATE = "#/components/schemas/{name}"

#: A raw payload (``payload=bytes``): the value as it was sent, not JSON.
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf")
_SCHEMAS = ("additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")


def describe(
    types: Sequence[Any], where: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each type's schema, and the components they refer to: one msgspec call, so that a type
    several payloads use is one component. ``where[i]`` names who declared ``types[i]``, for
    the error if msgspec cannot describe it."""
    try:
        schemas, components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    except (TypeError, ValueError):
        for kind, declared in zip(types, where, strict=True):
            try:
                msgspec.json.schema(kind)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"{declared}: msgspec cannot describe {kind!r}: {error}") from None
        raise
    return [draft_07(s) for s in schemas], {name: draft_07(s) for name, s in components.items()}


def draft_07(schema: Any) -> Any:
    """``schema`` with msgspec's 2020-12 tuples and discriminators said the draft 07 way."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "prefixItems" in out:
        rest = out.pop("items", True)
        out["items"] = [draft_07(item) for item in out.pop("prefixItems")]
        if rest is not True:
            out["additionalItems"] = draft_07(rest)
    elif "items" in out:
        out["items"] = draft_07(out["items"])
    if isinstance(out.get("discriminator"), dict):
        out["discriminator"] = out["discriminator"]["propertyName"]
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: draft_07(value) for name, value in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [draft_07(value) for value in out[key]]
    for key in _SCHEMAS:
        if key in out:
            out[key] = draft_07(out[key])
    return out
