"""Old public names that keep working for a while, each with a ``DeprecationWarning`` saying
what to write instead."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def warn(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new``, pointing at the caller's caller
    (the user's line, when called from the function whose argument or attribute changed)."""
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)


def module_getattr(module: str, moved: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that left ``module``: ``moved`` maps each old name to
    where its object lives now (``"package.module:Name"``) and what to write instead. The
    object is imported only when the old name is used, so no import cycle comes of it."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target, instead = moved[name]
        # ``from package import name`` asks twice: importlib's hasattr, then the import itself,
        # whose line is the one to name.
        if not sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
            warn(f"{module}.{name}", instead)
        path, _, attribute = target.partition(":")
        return getattr(importlib.import_module(path), attribute)

    return __getattr__
