"""Event topics and patterns: ``/``-separated segments, MQTT-style ``+`` and ``#``.

Field values put into a topic are escaped (``%`` -> ``%25``, ``/`` -> ``%2F``) so a name
containing ``/`` stays one segment; patterns are matched against the escaped form.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache


class InvalidPattern(ValueError):
    """A subscription pattern that cannot match as intended."""


def segment(value: object) -> str:
    """Escape one value for use as a single topic segment."""
    text = str(value)
    if "%" in text or "/" in text:
        text = text.replace("%", "%25").replace("/", "%2F")
    return text


def unescape(seg: str) -> str:
    """Undo :func:`segment`."""
    return seg.replace("%2F", "/").replace("%25", "%") if "%" in seg else seg


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate for ``pattern``: ``+`` is one segment, a final ``#`` is any rest."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern(f"a topic pattern is a non-empty string, got {pattern!r}")
    parts = pattern.split("/")
    for index, part in enumerate(parts):
        if part == "#" and index != len(parts) - 1:
            raise InvalidPattern(f"invalid pattern {pattern!r}: '#' must be the last segment")
        if part not in ("+", "#") and ("+" in part or "#" in part):
            raise InvalidPattern(
                f"invalid pattern {pattern!r}: '+' and '#' must fill a whole segment"
            )
    if "+" not in parts and "#" not in parts:
        return pattern.__eq__
    multi = parts[-1] == "#"
    fixed = parts[:-1] if multi else parts

    def match(topic: str) -> bool:
        segs = topic.split("/")
        if multi:
            if len(segs) < len(fixed):
                return False
        elif len(segs) != len(fixed):
            return False
        return all(p in ("+", s) for p, s in zip(fixed, segs, strict=False))

    return match
