"""How a command fails: the user's mistake (exit 2, one line) or a failure (exit 1)."""

from __future__ import annotations

USAGE_ERROR = 2
FAILED = 1


class CliError(Exception):
    """A mistake the user can fix; ``main`` prints it as ``error: ...`` and exits 2."""
