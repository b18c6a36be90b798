"""The example nodes shipped for etc/hadaemon.toml run against the demo devices."""

from __future__ import annotations

import pathlib
from typing import Any

from hadaemon.testing import run_in_reactor, wait_until
from tests.nodes.helpers import make_config, running

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "hadaemon" / "nodes" / "examples"


def test_example_flow(tmp_path: pathlib.Path) -> None:
    config = make_config(tmp_path, [
        {"id": "cold_alert", "file": str(EXAMPLES / "cold_alert.py"),
         "info": {"threshold": 25.0}, "wires": [["announcer"]]},
        {"id": "announcer", "file": str(EXAMPLES / "announcer.py"), "outputs": 0,
         "info": {"room": "Living room"}},
    ], plugins=("demo", "nodes"))

    async def scenario(reactor: Any) -> None:
        async with running(reactor, config) as run:
            registry = run.daemon.registry
            thermometer = registry.find("demo", "thermometer")
            assert thermometer is not None
            registry.report(thermometer.peer_id, 0, "temperature", 18.5)
            await wait_until(reactor, lambda: run.state("announcer")["status"],
                             what="the announcer's status", timeout=10.0)
            assert run.state("announcer")["status"] == {
                "text": "1 alert(s), last 18.5 °C", "shape": "dot", "fill": "blue"}
            assert run.daemon.store.get("plugin/nodes/node/announcer/alerts") == 1

    run_in_reactor(scenario, timeout=30)
