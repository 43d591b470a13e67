"""YAML for plain JSON data (what ``asyncapi_document`` returns), without a YAML library.

Block style, two-space indents. A string is written plain only when it cannot be read back
as anything else (it matches a conservative pattern and is no YAML 1.1 or 1.2 keyword);
every other string is double-quoted with JSON's escapes, which YAML's double-quoted style
reads the same way. So ``yaml.safe_load(to_yaml(data)) == data``, which the tests check.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$./ -]*")
#: What YAML does not allow raw in a stream (C1 controls, DEL, surrogates, non-characters) or
#: reads as a line break or a byte order mark,
#: beyond the control characters JSON escapes anyway.
_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_KEYWORDS = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}
)  # read case-insensitively by one YAML version or another


def to_yaml(data: Any) -> str:
    """``data`` (dicts with string keys, lists, strings, numbers, booleans, None) as YAML."""
    return "\n".join(_lines(data, 0)) + "\n"


def _lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"YAML keys here are strings, not {type(key).__name__} ({key!r})")
            lines += _entry(f"{pad}{_scalar(key)}:", item, indent + 1)
        return lines
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            lines += _entry(f"{pad}-", item, indent + 1)
        return lines
    return [pad + _scalar(value)]


def _entry(head: str, item: Any, indent: int) -> list[str]:
    """``key:`` or ``-`` and its value: on the same line if it is a scalar, below it if not."""
    if isinstance(item, (dict, list)) and item:
        if head.endswith("-") and isinstance(item, dict):  # "- key: value", the rest aligned below
            first, *rest = _lines(item, indent)
            return [f"{head} {first.lstrip()}", *rest]
        return [head, *_lines(item, indent)]
    return [f"{head} {_scalar(item)}"]


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form, so none here either")
        return json.dumps(value)
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and not value.endswith(" ") and value.lower() not in _KEYWORDS
        return value if plain else _quoted(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    raise TypeError(f"{type(value).__name__} is not JSON data ({value!r})")


def _quoted(text: str) -> str:
    """A double-quoted scalar: JSON's escapes (YAML reads them alike), other characters raw
    except those YAML does not allow in a stream (escaped as \\uXXXX)."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))
