"""The API's endpoints: one function each, declared in :data:`routes` (which the
dispatcher and the OpenAPI document read). Each takes the web plugin and the
:class:`Call`; what it returns is answered as JSON; :class:`ApiError` is a 4xx/5xx.

One module per resource; importing them here, in this order, declares their routes in
the order the dispatcher tries them and the OpenAPI document lists them.

Reactor thread only.
"""

from __future__ import annotations

# isort: off
from hadaemon.web.api import (  # noqa: F401  (imported to declare their routes, in order)
    access,
    status,
    devices,
    sysvars,
    nodes,
    services,
    zigbee,
    monitoring,
    reload,
    events,
)
# isort: on
from hadaemon.web.api.devices import _device, _variable  # noqa: F401  (tests use them)
from hadaemon.web.api.table import routes

__all__ = ["routes"]
