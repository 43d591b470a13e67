"""``python -m aiostream_kafka.cli``: the same command as ``python -m aiostream_kafka``."""

from aiostream_kafka.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
