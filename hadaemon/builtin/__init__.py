"""Plugins shipped with hadaemon (registered as ``hadaemon.plugins`` entry points)."""
