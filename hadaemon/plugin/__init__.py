"""Plugins: Twisted services with a context, found in directories and entry points."""

from hadaemon.plugin.base import Plugin, PluginContext, PluginFactory
from hadaemon.plugin.discovery import (
    ENTRY_POINT_GROUP,
    Catalog,
    PluginInfo,
    PluginProblem,
    describe,
    discover,
    discover_for,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Catalog",
    "Plugin",
    "PluginContext",
    "PluginFactory",
    "PluginInfo",
    "PluginProblem",
    "describe",
    "discover",
    "discover_for",
]
