"""The ``web`` command: serve the Web UI for the app's clusters (the app itself does not run here).

uvicorn and the UI are imported only here, so that the other commands work without the extra.
"""

from __future__ import annotations

import argparse
import os

from aiostream_kafka.cli import logs
from aiostream_kafka.cli.errors import CliError
from aiostream_kafka.cli.loading import load_app


def command(args: argparse.Namespace) -> int:
    from aiostream_kafka.web.auth import TOKEN_ENV, BindError, check_bind, loopback_hosts

    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        check_bind(args.host, token)
    except BindError as error:
        raise CliError(str(error)) from None
    try:
        import uvicorn
    except ImportError:
        raise CliError("the Web UI needs its extra: pip install 'aiostream-kafka[web]'") from None
    app = load_app(args.app)
    # Tokenless means loopback: answer only requests addressed to it (no DNS rebinding).
    web_app = app.web.asgi(token=token, hosts=None if token else loopback_hosts(args.host, args.port))
    logs.configure(args.log_level)
    uvicorn.run(web_app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
