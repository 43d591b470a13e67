"""``python -m aiostream_kafka``: the ``aiostream-kafka`` command, for when scripts are not on PATH."""

from aiostream_kafka.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
