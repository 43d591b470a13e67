"""Finding the app a command names.

Apps are named the way uvicorn names them, ``module:attribute`` (``examples.multi_cluster:app``),
imported from the current directory. A mistake in that path is a CliError saying what to fix;
an ImportError in the user's module is one too, naming the line that failed. Any other
exception the module raises is left to propagate, traceback and all.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import types
from typing import Any

from aiostream_kafka.app import App
from aiostream_kafka.cli.errors import CliError


def import_from_cwd() -> None:
    """``aiostream-kafka run examples.multi_cluster:app`` finds ``examples`` here, as uvicorn does."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def load_app(path: str) -> App:
    """Import ``module:attribute`` and return that App, or raise CliError saying what is wrong."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise CliError(f"{path!r} is not an app path; the expected form is module:attribute (e.g. main:app)")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        dotted = module_name.removesuffix(".py").replace("/", ".").replace("\\", ".").strip(".")
        raise CliError(f"{path!r} names a file; give the module instead: {dotted}:{attribute}")
    module = _import(module_name)
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CliError(_missing(module, attribute))
        target = getattr(target, part)
    if not isinstance(target, App):
        hint = ""
        if isinstance(target, types.FunctionType):
            hint = f"; if it builds the App, call it at module level (app = {attribute}()) and name that"
        raise CliError(f"{path!r} is {_kind(target)}, not an aiostream_kafka.App instance{hint}")
    return target


def qualified_name(cls: type) -> str:
    """A class as the user would write it: builtins bare, anything else with its module."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _import(module_name: str) -> types.ModuleType:
    """Import the user's module, telling a module that is not there from one that fails to import."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # error.name is what was not found: the module itself (or a parent package), or
        # something the module imports, which is a failure inside the module.
        if error.name is not None and (module_name + ".").startswith(error.name + "."):
            raise CliError(
                f"module {module_name!r} not found ({error}); run from the directory that contains it, "
                f"or add that directory to PYTHONPATH"
            ) from None
        raise CliError(_failed_import(module_name, error)) from None
    except ImportError as error:
        raise CliError(_failed_import(module_name, error)) from None


def _failed_import(module_name: str, error: ImportError) -> str:
    """Name the line of the user's code that failed: the traceback is hidden, the place is not."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if "importlib" not in frame.filename
    ]
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"importing module {module_name!r} failed{where}: {type(error).__name__}: {error}"


def _missing(module: types.ModuleType, attribute: str) -> str:
    apps = [name for name, value in vars(module).items() if isinstance(value, App)]
    found = f"its App instances: {', '.join(apps)}" if apps else "it defines no aiostream_kafka.App"
    return f"module {module.__name__!r} has no attribute {attribute!r}; {found}"


def _kind(value: Any) -> str:
    """How an error describes what the user pointed at instead of an App."""
    if isinstance(value, types.ModuleType):
        return f"the module {value.__name__}"
    if isinstance(value, type):
        return f"the class {qualified_name(value)}"
    if isinstance(value, types.FunctionType):
        return "a function"
    return f"a {qualified_name(type(value))}"
