"""Showing a message's bytes to a person: decoded when possible, never too much of it.

The result is plain text; the templates escape it (Jinja2 autoescape), so a payload full of
``<script>`` is shown, not run.
"""

from __future__ import annotations

import msgspec

LIMIT = 4_096


def show(value: bytes | None, limit: int = LIMIT) -> tuple[str, str]:
    """(how it was read, the text): JSON pretty-printed, UTF-8 text, or hex; cut at ``limit`` bytes."""
    if value is None:
        return "null", ""
    cut = len(value) > limit
    head = value[:limit]
    suffix = f"\n… {len(value) - limit} more bytes" if cut else ""
    if not cut:
        try:
            return "json", msgspec.json.format(head, indent=2).decode() + suffix
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass
    try:
        return "text", head.decode() + suffix
    except UnicodeDecodeError:
        return "binary", head.hex(" ") + suffix


def headers(raw: object) -> list[tuple[str, str]]:
    shown = []
    for name, value in raw:  # type: ignore[attr-defined]
        text = show(value, 512)[1] if isinstance(value, bytes) else ""
        shown.append((str(name), text))
    return shown
