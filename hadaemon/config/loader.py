"""Reading a TOML config file and validating it against the declared schemas."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hadaemon.config.core import CORE_SECTIONS, CoreSettings
from hadaemon.config.errors import ConfigError, ConfigErrors
from hadaemon.config.schema import Context, Section, did_you_mean


@dataclass(frozen=True)
class RawConfig:
    """A parsed but unvalidated config, with what is needed to report and resolve paths."""

    source: str
    path: pathlib.Path | None
    base_dir: pathlib.Path
    data: Mapping[str, Any]
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class Config:
    """A validated config: typed core settings and every known section with defaults."""

    raw: RawConfig
    core: CoreSettings
    sections: Mapping[str, Mapping[str, Any]]
    warnings: tuple[ConfigError, ...] = ()  # deprecated key names, each named once

    @property
    def source(self) -> str:
        return self.raw.source

    @property
    def base_dir(self) -> pathlib.Path:
        return self.raw.base_dir

    def section(self, name: str) -> Mapping[str, Any]:
        """A section's validated values ({} for a section nobody declared)."""
        return self.sections.get(name, {})


def read(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RawConfig:
    """Parse a config file (or take a mapping, as embedding programs may pass one).

    Relative paths in a file are relative to the file; in a mapping, to ``base_dir``
    (default: the current directory).
    """
    env = dict(os.environ if environ is None else environ)
    if isinstance(source, Mapping):
        base = pathlib.Path(base_dir if base_dir is not None else os.getcwd()).resolve()
        return RawConfig("<config>", None, base, dict(source), env)
    shown = os.fspath(source)
    path = pathlib.Path(shown)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigErrors([ConfigError(shown, (), "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigErrors([ConfigError(shown, (), f"cannot read: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigErrors([ConfigError(shown, (), f"invalid TOML: {exc}")]) from None
    base = pathlib.Path(base_dir) if base_dir is not None else path.resolve().parent
    return RawConfig(shown, path.resolve(), base, data, env)


def validate(
    raw: RawConfig, plugin_schemas: Mapping[str, Section | None] | None = None
) -> tuple[Config, list[ConfigError]]:
    """Validate every section; the config is returned even when there are errors.

    ``plugin_schemas`` maps every plugin name that can be enabled to its section's
    schema; a section named by none of them (nor by the core) is an error. A schema of
    None means the plugin could not be loaded: its section is left unchecked.
    """
    schemas = dict(plugin_schemas or {})
    ctx = Context(raw.source, raw.base_dir, raw.environ)
    sections: dict[str, Mapping[str, Any]] = {}
    known = {**{k: v for k, v in schemas.items()}, **CORE_SECTIONS}
    for name, value in raw.data.items():
        if name not in known:
            hint = did_you_mean(name, list(known))
            choices = ", ".join(sorted(known))
            ctx.error((name,), f"unknown section{hint}; known sections: {choices}")
        elif not isinstance(value, dict):
            ctx.error((name,), "expected a table ([" + name + "] section)")
    for name, section in CORE_SECTIONS.items():
        value = raw.data.get(name, {})
        sections[name] = section.validate(value if isinstance(value, dict) else {}, ctx, (name,))
    enabled = sections["daemon"].get("plugins")
    enabled = set(enabled) if isinstance(enabled, list) else set()
    for name, schema in schemas.items():
        # A plugin's section is checked when present, and when the plugin is enabled
        # (its required keys must be there); other plugins' defaults are not our business.
        if schema is None or (name not in raw.data and name not in enabled):
            continue
        value = raw.data.get(name, {})
        if isinstance(value, dict):
            sections[name] = schema.validate(value, ctx, (name,))
    core = CoreSettings.from_sections(sections) if not ctx.errors else _core_or_defaults(sections)
    config = Config(raw, _mark_explicit(core, raw), sections, tuple(ctx.warnings))
    return config, ctx.errors


def validate_core(raw: RawConfig) -> tuple[CoreSettings, list[ConfigError]]:
    """Only the core sections: needed first, to find the plugin directories."""
    ctx = Context(raw.source, raw.base_dir, raw.environ)
    sections = {}
    for name, section in CORE_SECTIONS.items():
        value = raw.data.get(name, {})
        if not isinstance(value, dict):
            ctx.error((name,), "expected a table ([" + name + "] section)")
            value = {}
        sections[name] = section.validate(value, ctx, (name,))
    return _mark_explicit(_core_or_defaults(sections), raw), ctx.errors


def _mark_explicit(core: CoreSettings, raw: RawConfig) -> CoreSettings:
    daemon = raw.data.get("daemon")
    explicit = isinstance(daemon, dict) and "plugin_dirs" in daemon
    reload_explicit = isinstance(daemon, dict) and "reload" in daemon
    return dataclasses.replace(core, plugin_dirs_explicit=explicit,
                               reload_explicit=reload_explicit)


def load(
    source: str | os.PathLike[str] | Mapping[str, Any],
    plugin_schemas: Mapping[str, Section | None] | None = None,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate; raise ConfigErrors listing every problem."""
    config, errors = validate(read(source, base_dir=base_dir, environ=environ), plugin_schemas)
    if errors:
        raise ConfigErrors(errors)
    return config


def _core_or_defaults(sections: Mapping[str, Mapping[str, Any]]) -> CoreSettings:
    # With errors in a core section, fall back to that section's defaults so the caller
    # can still report everything (and find plugin directories) in one pass.
    from hadaemon.config.schema import MISSING

    fixed: dict[str, Mapping[str, Any]] = {}
    for name, section in CORE_SECTIONS.items():
        values = dict(sections.get(name, {}))
        defaults = section.defaults()
        for key, value in list(values.items()):
            values[key] = defaults[key] if value is MISSING else _strip_missing(value)
        fixed[name] = values or defaults
    return CoreSettings.from_sections(fixed)


def _strip_missing(value: Any) -> Any:
    from hadaemon.config.schema import MISSING

    if isinstance(value, list):
        return [_strip_missing(v) for v in value if v is not MISSING]
    if isinstance(value, dict):
        return {k: _strip_missing(v) for k, v in value.items() if v is not MISSING}
    return value
