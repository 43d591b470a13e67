"""Run every benchmark module (benchmarks/bench_*.py) in turn: `make bench`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> int:
    modules = sorted(Path(__file__).parent.glob("bench_*.py"))
    if not modules:
        print("no benchmarks in benchmarks/ yet")
        return 0
    for path in modules:
        print(f"== {path.stem}")
        importlib.import_module(f"benchmarks.{path.stem}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
