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
    plugin_file,
    reimport,
)
from hadaemon.plugin.order import Needs, StartOrder, needs_of, plan, start_order

__all__ = [
    "ENTRY_POINT_GROUP",
    "Catalog",
    "Needs",
    "Plugin",
    "PluginContext",
    "PluginFactory",
    "PluginInfo",
    "PluginProblem",
    "StartOrder",
    "describe",
    "discover",
    "discover_for",
    "needs_of",
    "plan",
    "plugin_file",
    "reimport",
    "start_order",
]
