"""The endpoints in front of other plugins: the zigbee bridge (a simulated zigbee2mqtt on
a real broker), history and metrics (the real plugins)."""

from __future__ import annotations

import time

from hadaemon.testing import Broker, poll_until
from tests.web.helpers import LiveDaemon, make_config


def test_zigbee_bridge_state_permit_join_and_its_devices(tmp_path, broker: Broker) -> None:
    config = make_config(
        tmp_path, ("mqtt", "zigbee2mqtt_simulator", "zigbee2mqtt", "demo", "web"),
        mqtt={"host": broker.host, "port": broker.port, "client_id": "web-test",
              "reconnect_delay": 0.05},
        zigbee2mqtt={"devices_timeout": 1.0},
        zigbee2mqtt_simulator={"report_interval": 0.0, "latency": 0.0},
    )
    with LiveDaemon(config) as live:
        client = live.client()
        poll_until(lambda: client.get("/api/zigbee").json.get("online") is True,
                   what="the bridge online")
        bridge = client.get("/api/zigbee").json
        assert bridge["ready"] is True and bridge["devices"] > 0
        answer = client.request("POST", "/api/zigbee/permit_join", {"seconds": 30})
        assert answer.status == 200, answer.body
        assert answer.json["answer"] == {"time": 30}
        poll_until(lambda: client.get("/api/zigbee").json["permit_join"] is True,
                   what="permit join on")
        too_long = client.request("POST", "/api/zigbee/permit_join", {"seconds": 999})
        assert (too_long.status, too_long.error) == (400, "out_of_range")
        sources = {d["source"] for d in client.get("/api/devices").json["devices"]}
        assert {"demo", "zigbee2mqtt"} <= sources


def test_history_recorded_by_the_history_plugin_and_asked_through_the_api(tmp_path) -> None:
    with LiveDaemon(make_config(tmp_path, ("history", "demo", "web"),
                                history={"batch_interval": 0.05})) as live:
        client = live.client()
        devices = client.get("/api/devices").json["devices"]
        thermometer = next(d for d in devices if d["key"] == "thermometer")
        base = (f"/api/history?source=demo&peer_id={thermometer['peer_id']}&channel=0"
                "&name=temperature")
        now = time.time()
        window = f"{base}&start={now - 3600}&end={now + 3600}"
        poll_until(lambda: client.get(window).json.get("points"),
                   what="the demo thermometer's first report recorded")
        answer = client.get(window)
        assert answer.status == 200, answer.body
        [[stamp, value]] = answer.json["points"]
        assert abs(stamp - now) < 60 and isinstance(value, float)
        default = client.get(base)  # the last day, by default
        assert default.status == 200 and default.json["points"] == answer.json["points"]
        backwards = client.get(f"{base}&start=200&end=100")
        assert (backwards.status, backwards.error) == (400, "bad_query"), backwards.body
        unknown = client.get("/api/history?source=demo&peer_id=999&channel=0&name=x")
        assert (unknown.status, unknown.error) == (400, "bad_query"), unknown.body
        missing = client.get(f"/api/history?source=demo&peer_id={thermometer['peer_id']}"
                             "&channel=0")
        assert (missing.status, missing.error) == (400, "missing_parameter")
        assert "name" in missing.json["message"]


def test_metrics_need_a_token_unless_public(tmp_path) -> None:
    with LiveDaemon(make_config(tmp_path, ("demo", "metrics", "web"))) as live:
        client = live.client()
        answer = client.get("/metrics")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert b"hadaemon_bus_endpoints" in answer.body
        assert client.get("/metrics", auth=False).status == 401
    public = make_config(tmp_path / "public", ("demo", "metrics", "web"),
                         web={"port": 0, "metrics_public": True})
    with LiveDaemon(public) as live:
        anonymous = live.client()
        assert anonymous.get("/metrics", auth=False).status == 200
        assert anonymous.get("/api/status", auth=False).status == 401
