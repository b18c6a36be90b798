"""The mosquitto brokers the benchmarks measure on, in one place (issue 11 §5: say which
broker settings each figure used).

- ``stock_broker()``: mosquitto as installed, its config only a listener (and
  ``allow_anonymous true``, which mosquitto 2 needs for anonymous clients): Nagle on,
  1000 queued messages per client. Extra lines (``stock_broker(["set_tcp_nodelay
  true"])``) are the only settings added.
- ``hadaemon.testing.Broker``: the test suite's broker, which sets ``set_tcp_nodelay
  true``, ``max_queued_messages 100000`` and ``persistence false`` (see its config).

``config_lines(broker)`` is a started broker's whole config, to print next to figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def stock_broker(extra: Sequence[str] = ()) -> Any:
    """A mosquitto whose config is only a listener (+ ``extra``), as installed."""
    from hadaemon.testing import Broker

    class ConfiguredBroker(Broker):
        def _mosquitto_config(self) -> str:
            return "\n".join([f"listener {self.port} {self.host}", "allow_anonymous true",
                              *self.extra_config])

    return ConfiguredBroker(impl="mosquitto", extra_config=extra)


def config_lines(broker: Any) -> list[str]:
    """The settings a (started) broker runs with: its config file's lines, comments and
    logging left out."""
    lines = broker.config_path.read_text().strip().splitlines()
    return [line for line in lines
            if line and not line.startswith("#") and not line.startswith("log_")]
