"""The ``asyncapi`` command: the app as an AsyncAPI 3.0 document, JSON or ``--yaml``, on stdout.

Made from the declarations alone, like ``info``: nothing connects, and no secret is in it.
"""

from __future__ import annotations

import argparse
import json

from aiostream_kafka.asyncapi import asyncapi_document, to_yaml
from aiostream_kafka.cli.loading import load_app


def command(args: argparse.Namespace) -> int:
    document = asyncapi_document(load_app(args.app), version=args.app_version)
    print(to_yaml(document) if args.yaml else json.dumps(document, indent=2, ensure_ascii=False), end="")
    if not args.yaml:
        print()
    return 0
