"""Schemas that adapters and plugins declare for their config sections.

A schema is data (fields with types, defaults and docs), so ``hadaemon check`` can validate
every section without starting anything, and the config reference can be generated from it.
"""

from __future__ import annotations

import difflib
import math
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hadaemon.config.errors import ConfigError, KeyPath, show_value


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class Invalid(Exception):
    """A value does not fit its field; the message says what was expected."""


@dataclass
class Context:
    """Where a value is validated: the file (for messages), its directory, the environment."""

    source: str
    base_dir: pathlib.Path
    environ: Mapping[str, str]
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(ConfigError(self.source, path, message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(ConfigError(self.source, path, message))


class Field:
    """A typed value in a section; subclasses convert and check raw TOML values."""

    kind = "a value"

    def __init__(self, *, default: Any = MISSING, doc: str = "", secret: bool = False) -> None:
        self.default = default
        self.doc = doc
        self.secret = secret

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def describe(self) -> str:
        """The type, for the generated config reference."""
        return self.kind

    def plain(self, value: Any) -> Any:
        """A default as its Python value without a config file (a settings class's
        default): paths stay relative, nothing is checked."""
        return value

    def validate(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        """Convert ``value``; on a problem record it in ``ctx`` and return MISSING."""
        if isinstance(value, dict) and set(value) <= {"env", "default"} and "env" in value:
            return self._from_env(value, ctx, path)
        try:
            return self.convert(value, ctx, path)
        except Invalid as exc:
            ctx.error(path, self._shown(exc))
            return MISSING

    def _shown(self, exc: Invalid) -> str:
        # A secret's bad value must not end up in a terminal or a log.
        if self.secret:
            return f"invalid value (expected {self.describe()}; the value is secret, not shown)"
        return str(exc)

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        raise NotImplementedError

    def from_string(self, text: str) -> Any:
        """Parse an environment variable's text for this field."""
        raise Invalid(f"cannot be read from an environment variable (expected {self.kind})")

    def _from_env(self, spec: dict[str, Any], ctx: Context, path: KeyPath) -> Any:
        # Secrets (passwords, tokens) stay out of config files: {env = "NAME"}.
        name = spec["env"]
        if not isinstance(name, str) or not name:
            ctx.error(path, 'expected {env = "VARIABLE_NAME"} with a variable name')
            return MISSING
        if name not in ctx.environ:
            if "default" in spec:
                return self.validate(spec["default"], ctx, path)
            ctx.error(path, f"environment variable {name} is not set")
            return MISSING
        try:
            return self.convert(self.from_string(ctx.environ[name]), ctx, path)
        except Invalid as exc:
            ctx.error(path, f"{self._shown(exc)} (from environment variable {name})")
            return MISSING


class Str(Field):
    kind = "a string"

    def __init__(self, *, default: Any = MISSING, doc: str = "", secret: bool = False,
                 non_empty: bool = False) -> None:
        super().__init__(default=default, doc=doc, secret=secret)
        self.non_empty = non_empty

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(value, str):
            raise Invalid(f"expected a string, got {show_value(value)}")
        if self.non_empty and not value:
            raise Invalid("expected a non-empty string")
        return value

    def from_string(self, text: str) -> Any:
        return text


class Int(Field):
    kind = "an integer"

    def __init__(self, *, default: Any = MISSING, doc: str = "", secret: bool = False,
                 min: int | None = None, max: int | None = None) -> None:
        super().__init__(default=default, doc=doc, secret=secret)
        self.min, self.max = min, max

    def describe(self) -> str:
        return _ranged(self.kind, self.min, self.max)

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected an integer, got {show_value(value)}")
        _check_range(value, self.min, self.max)
        return value

    def from_string(self, text: str) -> Any:
        try:
            return int(text.strip())
        except ValueError:
            raise Invalid(f"expected an integer, got {show_value(text)}") from None


class Float(Field):
    kind = "a number"

    def __init__(self, *, default: Any = MISSING, doc: str = "", secret: bool = False,
                 min: float | None = None, max: float | None = None) -> None:
        super().__init__(default=default, doc=doc, secret=secret)
        self.min, self.max = min, max

    def describe(self) -> str:
        return _ranged(self.kind, self.min, self.max)

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"expected a number, got {show_value(value)}")
        number = float(value)
        if math.isnan(number):
            raise Invalid("expected a number, got nan")
        _check_range(number, self.min, self.max)
        return number

    def from_string(self, text: str) -> Any:
        try:
            return float(text.strip())
        except ValueError:
            raise Invalid(f"expected a number, got {show_value(text)}") from None


class Bool(Field):
    kind = "true or false"

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {show_value(value)}")
        return value

    def from_string(self, text: str) -> Any:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise Invalid(f"expected true or false, got {show_value(text)}")


class Choice(Field):
    def __init__(self, *values: str, default: Any = MISSING, doc: str = "") -> None:
        super().__init__(default=default, doc=doc)
        self.values = values

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(show_value(v) for v in self.values)

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if value not in self.values:
            raise Invalid(f"expected {self.kind}; got {show_value(value)}")
        return value

    def from_string(self, text: str) -> Any:
        return text


class Path(Field):
    """A filesystem path; relative paths are relative to the config file's directory."""

    kind = "a path"

    def __init__(self, *, default: Any = MISSING, doc: str = "", must_exist: bool = False,
                 kind: str | None = None) -> None:
        super().__init__(default=default, doc=doc)
        self.must_exist = must_exist
        self.path_kind = kind  # "file", "dir" or None

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if isinstance(value, pathlib.PurePath):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise Invalid(f"expected a path (a non-empty string), got {show_value(value)}")
        resolved = pathlib.Path(os.path.expanduser(value))
        if not resolved.is_absolute():
            resolved = ctx.base_dir / resolved
        resolved = pathlib.Path(os.path.normpath(resolved))
        if self.must_exist and not resolved.exists():
            raise Invalid(f"{resolved} does not exist")
        if self.must_exist and self.path_kind == "dir" and not resolved.is_dir():
            raise Invalid(f"{resolved} is not a directory")
        if self.must_exist and self.path_kind == "file" and not resolved.is_file():
            raise Invalid(f"{resolved} is not a file")
        return resolved

    def from_string(self, text: str) -> Any:
        return text

    def plain(self, value: Any) -> Any:
        return pathlib.Path(value) if isinstance(value, str) else value


class List(Field):
    def __init__(self, item: Field, *, default: Any = MISSING, doc: str = "",
                 min_length: int = 0, unique: bool = False) -> None:
        super().__init__(default=default, doc=doc)
        self.item = item
        self.min_length = min_length
        self.unique = unique

    def describe(self) -> str:
        return f"an array of {self.item.describe()}"

    def plain(self, value: Any) -> Any:
        return [self.item.plain(v) for v in value] if isinstance(value, list) else value

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"expected an array, got {show_value(value)}")
        if len(value) < self.min_length:
            raise Invalid(f"expected at least {self.min_length} item(s), got {len(value)}")
        out = []
        seen: set[Any] = set()
        for index, item in enumerate(value):
            converted = self.item.validate(item, ctx, (*path, index))
            if self.unique and converted is not MISSING:
                marker = repr(converted)
                if marker in seen:
                    ctx.error((*path, index), f"duplicate value {show_value(item)}")
                seen.add(marker)
            out.append(converted)
        return out


class Map(Field):
    """A table with free keys and values of one type (e.g. per-namespace log levels)."""

    def __init__(self, value: Field, *, default: Any = MISSING, doc: str = "",
                 key_check: Callable[[str], str | None] | None = None) -> None:
        super().__init__(default=default, doc=doc)
        self.value = value
        self.key_check = key_check

    def describe(self) -> str:
        return f"a table of {self.value.describe()}"

    def plain(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.value.plain(v) for k, v in value.items()}
        return value

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(value, dict):
            raise Invalid(f"expected a table, got {show_value(value)}")
        out = {}
        for key, item in value.items():
            if self.key_check is not None:
                problem = self.key_check(key)
                if problem:
                    ctx.error((*path, key), problem)
                    continue
            out[key] = self.value.validate(item, ctx, (*path, key))
        return out


class Table(Field):
    """A nested table with its own fields (``[section.sub]`` or an inline table)."""

    kind = "a table"

    def __init__(self, section: Section, *, default: Any = MISSING, doc: str = "") -> None:
        super().__init__(default=default, doc=doc)
        self.section = section

    def convert(self, value: Any, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(value, dict):
            raise Invalid(f"expected a table, got {show_value(value)}")
        return self.section.validate(value, ctx, path)


class Section:
    """The fields of one config section (or nested table).

    ``old_names`` maps a deprecated key to the key that replaced it: the old key still
    works, with a warning that names file, section and key.
    """

    def __init__(self, fields: Mapping[str, Field] | None = None, doc: str = "",
                 old_names: Mapping[str, str] | None = None) -> None:
        self.fields: dict[str, Field] = dict(fields or {})
        self.doc = doc
        self.old_names: dict[str, str] = dict(old_names or {})
        for old, new in self.old_names.items():
            if new not in self.fields or old in self.fields:
                raise ValueError(f"old name {old!r} must stand for a field, not be one")

    def defaults(self) -> dict[str, Any]:
        """The section as if it were absent (only valid when nothing is required)."""
        return self.validate({}, Context("<defaults>", pathlib.Path.cwd(), {}), ())

    def validate(self, raw: Mapping[str, Any], ctx: Context, path: KeyPath) -> dict[str, Any]:
        """Validated values with defaults filled in; problems go to ``ctx.errors``."""
        out: dict[str, Any] = {}
        raw, written = self._renamed(raw, ctx, path)
        for key in raw:
            if key not in self.fields:
                ctx.error((*path, key), "unknown key" + did_you_mean(key, self.fields))
        for name, fld in self.fields.items():
            if name in raw:
                out[name] = fld.validate(raw[name], ctx, (*path, written.get(name, name)))
            elif fld.required:
                ctx.error((*path, name), "missing required value")
                out[name] = MISSING
            else:
                default = fld.default
                if isinstance(default, list | dict) or (
                    isinstance(fld, Path) and default is not None
                ):
                    # Defaults go through the field too (paths resolved, tables filled in).
                    default = fld.validate(default, ctx, (*path, name))
                out[name] = default
        return out

    def _renamed(
        self, raw: Mapping[str, Any], ctx: Context, path: KeyPath
    ) -> tuple[Mapping[str, Any], dict[str, str]]:
        # A deprecated key's value goes to the new key; its errors name the key as written.
        used = [old for old in self.old_names if old in raw]
        if not used:
            return raw, {}
        renamed, written = dict(raw), {}
        for old in used:
            new = self.old_names[old]
            value = renamed.pop(old)
            if new in raw:
                ctx.error((*path, old), f'old name of "{new}", which is also given; keep '
                          f'"{new}" only')
                continue
            ctx.warn((*path, old), f'deprecated name; call it "{new}"')
            renamed[new] = value
            written[new] = old
        return renamed, written


def did_you_mean(word: str, candidates: Sequence[str] | Mapping[str, Any]) -> str:
    """`` (did you mean "x"?)`` when a close match exists, else ``""``."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


def _ranged(kind: str, lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    if lo is not None:
        return f"{kind} >= {lo}"
    if hi is not None:
        return f"{kind} <= {hi}"
    return kind


def _check_range(value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise Invalid(f"expected a value >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise Invalid(f"expected a value <= {hi}, got {value}")
