"""One daemon with demo devices, two nodes and a service, shared by the API tests that
only read or write their own variables; tests that stop or break it make their own."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from tests.nodes.helpers import NODES
from tests.web.helpers import LiveDaemon, make_config

GREETER = '''
from base_service import CustomService


class Greeter(CustomService):
    async def Start(self):
        await self.Debug("hello from Start")

    async def Stop(self):
        await self.Debug("bye from Stop")
'''


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    tmp = tmp_path_factory.mktemp("web")
    services = tmp / "services"
    services.mkdir()
    (services / "Greeter.py").write_text(textwrap.dedent(GREETER))
    config = make_config(
        tmp, ("demo", "nodes", "services", "web"),
        nodes={"grace": 2.0, "node": [
            {"id": "first", "file": str(NODES / "relay.py"), "wires": [["second"]],
             "flow": "f1"},
            {"id": "second", "file": str(NODES / "relay.py"), "outputs": 1, "wires": [[]],
             "flow": "f1"},
        ]},
        services={"directories": [str(services)], "service": {"Greeter": {}},
                  "stop_timeout": 2.0, "restart_delay": 0.05},
    )
    with LiveDaemon(config) as daemon:
        yield daemon
