"""Old public names that keep working for a while, each with a ``DeprecationWarning`` saying
what to write instead."""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(old: str, new: str) -> None:
    """Warn that ``old`` is deprecated in favour of ``new``, at the first line outside this
    package: the user's, however many of our calls lie between."""
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=level)


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
