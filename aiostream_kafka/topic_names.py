"""What Kafka accepts as a topic name: one rule for routes and producers alike.

A leaf module (it imports nothing of ours), so routing and producing can both use it.
"""

from __future__ import annotations

import re

#: The rule in words, for errors that refuse a name.
TOPIC_NAME_RULE = "a topic name is 1 to 249 of the characters a-z A-Z 0-9 . _ -, other than '.' and '..'"

_ALLOWED = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_RESERVED = frozenset({".", ".."})  # the broker's log directories would collide with them


def is_topic_name(name: object) -> bool:
    """Whether a broker would accept ``name`` as a topic name (it refuses the rest, or hangs)."""
    return isinstance(name, str) and _ALLOWED.fullmatch(name) is not None and name not in _RESERVED
