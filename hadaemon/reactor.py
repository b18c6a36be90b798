"""Installing Twisted's asyncio reactor, the one reactor hadaemon runs on.

asyncio code in services and Twisted code must share one loop, so the asyncio reactor has
to be installed before anything imports ``twisted.internet.reactor`` (some Twisted modules
import it at import time). Every entry point (twistd plugin, CLI, embedding) calls
:func:`install_asyncio_reactor` first.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any


class WrongReactorError(RuntimeError):
    """Another reactor was installed before hadaemon could install the asyncio one."""


def installed_reactor() -> Any | None:
    """The global reactor if one is installed, without installing the default one."""
    module = sys.modules.get("twisted.internet.reactor")
    if module is None:
        return None
    return module


def install_asyncio_reactor(loop: asyncio.AbstractEventLoop | None = None) -> Any:
    """Install the asyncio reactor (idempotent) and return it.

    A fresh event loop is created and set as the current loop of the calling thread,
    which must be the thread that will run the reactor: asyncio code running in reactor
    callbacks then finds it with ``asyncio.get_event_loop()``.
    """
    existing = installed_reactor()
    if existing is not None:
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        if not isinstance(existing, AsyncioSelectorReactor):
            raise WrongReactorError(
                f"hadaemon needs Twisted's asyncio reactor, but {type(existing).__module__}."
                f"{type(existing).__name__} is already installed; start twistd with "
                "'-r asyncio' (or without -r) and make sure nothing imports "
                "twisted.internet.reactor before hadaemon"
            )
        return existing
    from twisted.internet import asyncioreactor

    if loop is None:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor
