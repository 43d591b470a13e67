"""The ``aiostream-kafka`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiostream_kafka.__about__ import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiostream-kafka", description=__doc__)
    parser.add_argument("--version", action="version", version=f"aiostream-kafka {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0
