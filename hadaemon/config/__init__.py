"""Configuration: one TOML file, a section per component, schemas declared as data."""

from hadaemon.config.core import CORE_SECTIONS, CoreSettings
from hadaemon.config.errors import ConfigError, ConfigErrors, format_key_path
from hadaemon.config.loader import Config, RawConfig, load, read, validate, validate_core
from hadaemon.config.schema import (
    MISSING,
    Bool,
    Choice,
    Field,
    Float,
    Int,
    List,
    Map,
    Path,
    Section,
    Str,
    Table,
)

__all__ = [
    "CORE_SECTIONS",
    "MISSING",
    "Bool",
    "Choice",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "CoreSettings",
    "Field",
    "Float",
    "Int",
    "List",
    "Map",
    "Path",
    "RawConfig",
    "Section",
    "Str",
    "Table",
    "format_key_path",
    "load",
    "read",
    "validate",
    "validate_core",
]
