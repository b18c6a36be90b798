"""MQTT topic names and filters: validation and matching, as plain functions.

The rules are MQTT 3.1.1's (section 4.7): ``+`` is one level, a final ``#`` is any number
of levels including none (``a/#`` matches ``a``), and filters starting with a wildcard do
not match topics starting with ``$`` (``$SYS/...``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache


class InvalidTopic(ValueError):
    """A topic or topic filter that MQTT does not allow; the message says why."""


def validate_topic(topic: str) -> str:
    """Check a topic to publish on (no wildcards, not empty, no NUL); returns it."""
    if not isinstance(topic, str) or not topic:
        raise InvalidTopic(f"a topic is a non-empty string, got {topic!r}")
    if "+" in topic or "#" in topic:
        raise InvalidTopic(f"cannot publish on {topic!r}: wildcards are for subscriptions")
    if "\x00" in topic:
        raise InvalidTopic(f"topic {topic!r} contains a NUL character")
    if len(topic.encode("utf-8")) > 65535:
        raise InvalidTopic("topic longer than 65535 bytes")
    return topic


def validate_filter(pattern: str) -> str:
    """Check a subscription filter; returns it."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidTopic(f"a topic filter is a non-empty string, got {pattern!r}")
    if "\x00" in pattern:
        raise InvalidTopic(f"topic filter {pattern!r} contains a NUL character")
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if level == "#":
            if index != len(levels) - 1:
                raise InvalidTopic(f"invalid filter {pattern!r}: '#' must be the last level")
        elif level != "+" and ("+" in level or "#" in level):
            raise InvalidTopic(
                f"invalid filter {pattern!r}: '+' and '#' must fill a whole level"
            )
    return pattern


@lru_cache(maxsize=512)
def matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate telling whether a topic matches ``pattern`` (validated first)."""
    validate_filter(pattern)
    if "+" not in pattern and "#" not in pattern:
        return pattern.__eq__
    levels = pattern.split("/")
    multi = levels[-1] == "#"
    fixed = levels[:-1] if multi else levels
    wild_start = levels[0] in ("+", "#")

    def match(topic: str) -> bool:
        if wild_start and topic.startswith("$"):
            return False
        parts = topic.split("/")
        if multi:
            if len(parts) < len(fixed):
                return False
        elif len(parts) != len(fixed):
            return False
        return all(want in ("+", got) for want, got in zip(fixed, parts, strict=False))

    return match


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the filter ``pattern``."""
    return matcher(pattern)(topic)
