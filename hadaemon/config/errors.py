"""Config errors that name the file and the key path, as ``file: [section].key: problem``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(part: str) -> str:
    return part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'


def format_key_path(path: KeyPath) -> str:
    """``("zigbee2mqtt", "port")`` -> ``[zigbee2mqtt].port``; list items as ``[2]``."""
    if not path:
        return "(top level)"
    head, *rest = path
    text = f"[{_key(str(head))}]"
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else "." + _key(part)
    return text


@dataclass(frozen=True)
class ConfigError:
    """One problem in one place of one config file."""

    source: str
    path: KeyPath
    message: str

    def __str__(self) -> str:
        if not self.source:
            return self.message
        if not self.path:
            return f"{self.source}: {self.message}"
        return f"{self.source}: {format_key_path(self.path)}: {self.message}"


class ConfigErrors(Exception):
    """Every problem found in a config; ``str()`` lists them one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def show_value(value: object) -> str:
    """A TOML-looking rendering of a bad value for messages (strings in double quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)
