"""Example node: announces what arrives on its input.

- logs it (nodeLog level 4: the daemon's log, tagged with this node);
- counts the alerts in its node data (kept across restarts of the node and the daemon);
- shows the count and the last temperature as its status.
"""

from __future__ import annotations

import sys
import time
from typing import Any

# (hadaemon puts its homegear module on a node's path; type checkers need not find it)
from homegear import Homegear  # type: ignore[import-not-found]


def nodeInput(nodeInfo: dict[str, Any], inputIndex: int, msg: dict[str, Any]) -> None:
    alert = msg["payload"]
    count = (hg.getNodeData("alerts") or 0) + 1
    hg.setNodeData("alerts", count)
    hg.nodeLog(4, f"{nodeInfo['info'].get('room', 'somewhere')} is cold: "
                  f"{alert['temperature']} °C (alert {count})")
    hg.nodeEvent("status/" + nodeInfo["id"], {
        "text": f"{count} alert(s), last {alert['temperature']} °C",
        "shape": "dot",
        "fill": "blue",
    })


hg = Homegear(sys.argv[1], None, sys.argv[2], nodeInput)
while hg.connected():
    time.sleep(1)
