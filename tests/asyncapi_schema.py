"""The AsyncAPI 3.0 JSON Schema (tests/data/asyncapi), and what the schema cannot check:
that every ``$ref`` of a document points at something in it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).parent / "data" / "asyncapi" / "3.0.0.json"


@cache
def asyncapi_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def problems(document: dict[str, Any]) -> list[str]:
    """Where ``document`` breaks the AsyncAPI 3.0 schema, or has a ``$ref`` to nothing."""
    found = [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
        for error in asyncapi_validator().iter_errors(document)
    ]
    found += [
        f"{where}: $ref {ref!r} points at nothing"
        for where, ref in refs(document)
        if not resolves(document, ref)
    ]
    return found


def refs(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every ``$ref`` in the document, with where it is."""
    if isinstance(value, dict):
        found = [(where, value["$ref"])] if isinstance(value.get("$ref"), str) else []
        for key, item in value.items():
            found += refs(item, f"{where}/{key}")
        return found
    if isinstance(value, list):
        return [ref for i, item in enumerate(value) for ref in refs(item, f"{where}/{i}")]
    return []


def resolves(document: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    target: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return False
        target = target[part]
    return True


def payload_validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """Validates payloads against one of the document's schemas, whose ``$ref``s point into the
    document's components: they are put beside it, at the root the references start from."""
    return jsonschema.Draft7Validator({"allOf": [schema], "components": document.get("components", {})})
