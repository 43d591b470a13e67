"""The primitive checks the contracts are made of, each written once.

Predicates, not refusals: each contract words its own error, naming the declaration. A
leaf module (standard library only), since ``errors`` uses it too.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard


def is_whole_number(value: object, minimum: int | None = None) -> TypeGuard[int]:
    """An ``int`` of at least ``minimum``, and not a bool: ``True`` is 1 to Python, never a
    count or a number of milliseconds to a user."""
    return isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum)


def is_number(value: object) -> TypeGuard[float]:
    """A finite ``int`` or ``float``, not a bool: not nan (which compares false to everything,
    so it slips past a range check written as a refusal) and not infinity."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_seconds(value: object) -> TypeGuard[float]:
    """A duration: a finite number of seconds above zero."""
    return is_number(value) and value > 0


def is_text(value: object) -> TypeGuard[str]:
    """A string with something in it."""
    return isinstance(value, str) and bool(value)


def is_async_function(value: object) -> TypeGuard[Callable[..., Any]]:
    """An ``async def`` function (or a partial of one): what a handler, ``consume`` and a job must be."""
    return inspect.iscoroutinefunction(value)


def is_text_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A mapping whose keys are all strings (settings by name)."""
    return isinstance(value, Mapping) and all(isinstance(key, str) for key in value)


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the option closest to a mistyped ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def callable_name(target: object) -> str:
    """``module:qualname``: how a handler, a consumer class or a job function is named in
    errors, events, ``info`` and the Web UI (never ``<function h at 0x7f51...>``). A partial
    is named after the function it calls, an object with ``__call__`` after its class."""
    while isinstance(target, functools.partial):
        target = target.func
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{getattr(target, '__module__', None) or '?'}:{target.__qualname__}"
