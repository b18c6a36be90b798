"""What ``import pyziggy`` gives an automation hadaemon runs (no top-level ``pyziggy``
package is installed: automations see these modules under pyziggy's names through an
import hook scoped to the automation's own modules, see :mod:`hadaemon.zigbee.loader`).

The submodules here are the typed, static definitions (what mypy checks against); each
running automation gets its own instances bound to it, so ``message_loop.stop()`` in one
automation stops that automation only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SUBMODULES = ("message_loop", "parameters", "devices_client", "broadcasters")


def pyziggy(argv: Sequence[str]) -> int:
    """pyziggy's command line, mapped onto ``hadaemon zigbee`` (``run``, ``generate``)."""
    from hadaemon.zigbee.cli import main

    return main(list(argv))


def run(devices: Any, config: Any = None) -> int:
    """pyziggy's in-process runner; under hadaemon use ``hadaemon zigbee run FILE``."""
    raise RuntimeError(
        "pyziggy.run() is not available under hadaemon: run the automation with "
        "'hadaemon zigbee run FILE --config CONFIG', or list it in [zigbee2mqtt].automations"
    )


class EmkyootConfig:
    """pyziggy's config loader; hadaemon reads [mqtt] and [zigbee2mqtt] from its config."""

    @staticmethod
    def load(path: str) -> None:
        return None


PyziggyConfig = EmkyootConfig
