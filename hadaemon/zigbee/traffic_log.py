"""A traffic log of zigbee2mqtt messages: its lines read and written, and the payload
patterns its expectations match with (the format is in :mod:`hadaemon.zigbee.testkit`)."""

from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

from hadaemon.mqtt import InvalidTopic, matches, validate_filter, validate_topic

KINDS = ("RECV", "SEND", "EXPECT", "UNORDERED", "PROHIBIT")
ANY = object()
_ENTRY = re.compile(r'^(\d+(?:\.\d*)?)\s+([A-Z]+)\s+("(?:[^"\\]|\\.)*")\s*(.*)$')


class LogError(ValueError):
    """A traffic log line that cannot be read; the message names the line."""


@dataclass
class Entry:
    """One line of a traffic log."""

    time: float
    kind: str
    topic: str
    payload: Any = None  # parsed JSON, a str (not JSON), ANY, or None (empty)
    exact: bool = False
    line: int = 0

    def matches(self, topic: str, payload: Any) -> bool:
        topic_ok = matches(self.topic, topic) if _wild(self.topic) else self.topic == topic
        return topic_ok and pattern_matches(self.payload, payload, exact=self.exact)

    def render(self) -> str:
        if self.payload is ANY:
            body = "*"
        elif self.payload is None:
            body = ""
        else:
            body = ("=" if self.exact else "") + json.dumps(self.payload, ensure_ascii=False)
        topic = json.dumps(self.topic, ensure_ascii=False)
        return f"{self.time:.3f}  {self.kind:<9}  {topic}  {body}".rstrip()


def _wild(topic: str) -> bool:
    return "+" in topic or "#" in topic


def pattern_matches(pattern: Any, actual: Any, *, exact: bool = False) -> bool:
    """Whether ``actual`` (a parsed payload) matches ``pattern`` (see the module doc)."""
    if pattern is ANY or pattern == "*":
        return True
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return False
        if exact and set(actual) != set(pattern):
            return False
        return all(key in actual and pattern_matches(value, actual[key], exact=exact)
                   for key, value in pattern.items())
    if isinstance(pattern, list):
        return (isinstance(actual, list) and len(actual) == len(pattern)
                and all(pattern_matches(p, a, exact=exact) for p, a in zip(pattern, actual,
                                                                             strict=True)))
    if isinstance(pattern, bool) or isinstance(actual, bool):
        return pattern is actual
    return bool(pattern == actual)


def parse_payload(data: bytes) -> Any:
    """A payload as a test kit value: JSON if it parses, else its text, None if empty."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")


@dataclass
class TrafficLog:
    """Entries in time order (stable for equal times)."""

    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | pathlib.Path) -> TrafficLog:
        path = pathlib.Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), base=path.parent, source=str(path))

    @classmethod
    def parse(cls, text: str, *, base: pathlib.Path | None = None,
              source: str = "<log>") -> TrafficLog:
        entries: list[Entry] = []
        pending: list[str] = []
        head: tuple[int, re.Match[str]] | None = None

        def finish() -> None:
            if head is None:
                return
            number, match = head
            body = " ".join([match.group(4), *pending]).strip()
            entries.append(_entry(number, match, body, base, source))

        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.rstrip()
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            match = _ENTRY.match(stripped)
            if match is not None:
                finish()
                head, pending = (number, match), []
            elif head is not None and raw[:1].isspace():
                pending.append(stripped)  # a long payload, continued and indented
            else:
                raise LogError(f"{source}:{number}: expected '<time> <KIND> \"<topic>\" "
                               f"[payload]', got {stripped[:60]!r}")
        finish()
        entries.sort(key=lambda e: e.time)
        return cls(entries)

    def dump(self) -> str:
        lines = ["# hadaemon zigbee traffic log (see hadaemon.zigbee.testkit)",
                 "# time    kind       topic  payload"]
        lines += [entry.render() for entry in self.entries]
        return "\n".join(lines) + "\n"

    def add(self, time: float, kind: str, topic: str, payload: Any) -> None:
        self.entries.append(Entry(time, kind, topic, payload))


def _entry(number: int, match: re.Match[str], body: str, base: pathlib.Path | None,
           source: str) -> Entry:
    kind = match.group(2)
    if kind not in KINDS:
        raise LogError(f"{source}:{number}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    try:
        topic = json.loads(match.group(3))
    except ValueError:
        raise LogError(f"{source}:{number}: the topic is not a valid JSON string") from None
    try:
        if kind in ("RECV", "SEND"):
            validate_topic(topic)
        else:
            validate_filter(topic)
    except InvalidTopic as exc:
        raise LogError(f"{source}:{number}: {exc}") from None
    exact = False
    payload: Any
    if body == "*":
        payload = ANY
    elif not body:
        payload = None
    elif body.startswith("@"):
        path = (base or pathlib.Path.cwd()) / body[1:]
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LogError(f"{source}:{number}: cannot load {path}: {exc}") from None
    else:
        if body.startswith("="):
            exact, body = True, body[1:]
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise LogError(f"{source}:{number}: payload is not JSON ({exc}); use * for "
                           "any payload") from None
    return Entry(float(match.group(1)), kind, topic, payload, exact, number)


__all__ = ["ANY", "KINDS", "Entry", "LogError", "TrafficLog", "parse_payload", "pattern_matches"]
