"""A site of its own without ``[mqtt].status_topic``: the presence topic (the retained
status and the last will) follows ``[federation].site``, through real daemons."""

from __future__ import annotations

import json
import pathlib
import re

from hadaemon.testing.waiting import poll_until
from tests.federation.conftest import Site

PLUGINS = str(pathlib.Path(__file__).parent / "plugins")
SITE = "casa/piso"  # levels of its own, and not the default "hadaemon"


def test_a_custom_site_without_status_topic(site_factory: Site) -> None:
    site = site_factory
    broker = site.broker()
    lamp_host = site.host("norte", broker, sections={
        "daemon": {"plugins": ["demo"]},
        "federation": {"site": SITE},
        "demo": {"interval": 30.0, "follow": False}})
    watcher = site.host("sur", broker, sections={
        "daemon": {"plugin_dirs": [PLUGINS], "plugins": ["fedprobe"]},
        "federation": {"site": SITE},
        "fedprobe": {"watch": ["variable/demo@norte/+/0/available"]}})
    for host in (lamp_host, watcher):
        assert "status_topic" not in host.config()["mqtt"]
        host.start()

    # Both statuses are where the site says, online (retained).
    observer = site.client(broker)
    observer.subscribe(f"{SITE}/+/status")
    seen: dict[str, object] = {}

    def both_online() -> bool:
        for message in observer.pending():
            seen[message.topic] = json.loads(message.payload)
        return all(seen.get(f"{SITE}/{name}/status") == {"state": "online"}
                   for name in ("norte", "sur"))

    poll_until(both_online, 30, f"both hosts online under {SITE}/: {seen}")

    # sur mirrors norte's devices, available ...
    available = re.compile(r"fedprobe saw demo@norte (\d+) available=True")
    poll_until(lambda: available.search(watcher.output()) is not None, 60,
               "norte's devices mirrored on sur, available")
    # ... and norte's last will is on the site's topic too: killed, it is offline for sur
    lamp_host.kill()
    watcher.wait_for("federation: host norte is offline")
    unavailable = re.compile(r"fedprobe saw demo@norte (\d+) available=False")
    poll_until(lambda: unavailable.search(watcher.output()) is not None, 60,
               "norte's mirrors unavailable on sur")
    assert watcher.stop() == 0
    assert "Traceback" not in watcher.output(), watcher.output()[-4000:]
