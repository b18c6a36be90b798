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
from hadaemon.config.settings import Settings, setting

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
    "Settings",
    "Str",
    "Table",
    "format_key_path",
    "load",
    "read",
    "setting",
    "validate",
    "validate_core",
]
