"""The daemon at a glance: plugins and their state, versions, counts, reactor lag."""

from __future__ import annotations

import platform
import time
from typing import TYPE_CHECKING, Any

import twisted
from hadaemon._version import __version__
from hadaemon.web.api.table import routes
from hadaemon.web.lag import reactor_summary
from hadaemon.web.routes import Call

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


@routes.get("/api/status", "Plugins and their state, uptime, versions, counts, reactor lag, "
            "recent errors", tag="status")
def status(web: WebPlugin, call: Call) -> Any:
    daemon = web.daemon
    failed = dict(getattr(daemon, "failed", {}))
    plugins = []
    for name, service in list(getattr(daemon, "plugins", [])):
        state = "failed" if name in failed else ("running" if service.running else "stopped")
        plugins.append({"name": name, "state": state, "error": failed.get(name)})
    started = {p["name"] for p in plugins}
    plugins += [{"name": n, "state": "failed", "error": e} for n, e in failed.items()
                if n not in started]
    devices = web.registry.devices()
    nodes = web.context.plugin("nodes")
    services = web.context.plugin("services")
    return {
        "name": web.context.daemon_config.core.name,
        "uptime": time.time() - web.started_at,
        "started_at": web.started_at,
        "versions": {"hadaemon": __version__, "python": platform.python_version(),
                     "twisted": twisted.__version__},
        "plugins": plugins,
        "counts": {
            "devices": len(devices),
            "variables": sum(len(c.variables) for d in devices for c in d.channels.values()),
            "system_variables": len(web.registry.system_variables()),
            "nodes": len(nodes.runtimes) if nodes is not None else 0,
            "services": len(services.services()) if services is not None else 0,
            "event_clients": len(web.journal.streams),
        },
        "reactor": reactor_summary(web.context.watchdog),
        "reload": _reload(daemon),
        "events": {"last_id": web.journal.last_id, "kept": len(web.journal.entries)},
        "recent_errors": list(web.recent_errors),
    }


def _reload(daemon: Any) -> dict[str, Any] | None:
    """Hot reload (docs/reload.md): on or off, how files are watched, how many."""
    reloader = getattr(daemon, "reloader", None)
    if reloader is None:
        return None
    watcher = reloader.watcher
    return {"mode": reloader.mode, "watching": watcher.mode if watcher else "off",
            "files": len(watcher.files) if watcher else 0,
            "config_reloads": reloader.reloads}
