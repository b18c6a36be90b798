"""Every endpoint through a real daemon and real HTTP: what it answers, and that what it
changes is changed in the daemon."""

from __future__ import annotations

from typing import Any

from hadaemon.testing import poll_until
from hadaemon.web.api import routes
from tests.web.helpers import LiveDaemon


def peer(live: LiveDaemon, key: str) -> int:
    return int(live.call(lambda: live.daemon.registry.find("demo", key).peer_id))


def test_status_shows_plugins_counts_versions_and_lag(live: LiveDaemon) -> None:
    answer = live.client().get("/api/status")
    assert answer.status == 200
    status = answer.json
    states = {p["name"]: p["state"] for p in status["plugins"]}
    assert states == {"demo": "running", "nodes": "running", "services": "running",
                      "web": "running"}
    assert status["counts"]["devices"] == 3
    assert status["counts"]["nodes"] == 2
    assert status["versions"]["hadaemon"]
    assert status["uptime"] >= 0
    assert status["reactor"]["watchdog"]["threshold"] > 0
    # the watchdog's ticks measure the lag (every threshold / 4 seconds)
    def sampled_lag() -> dict[str, Any] | None:
        lag: dict[str, Any] = live.client().get("/api/status").json["reactor"]["lag"]
        return lag if lag["samples"] else None

    lag = poll_until(sampled_lag, what="a lag sample")
    assert lag["interval"] > 0 and 0 <= lag["p50"] <= lag["max"]


def test_status_lists_recent_errors(live: LiveDaemon) -> None:
    from hadaemon.bus import ErrorEvent, Level

    live.call(lambda: live.daemon.bus.publish(ErrorEvent("test:status", "it broke",
                                                         Level.ERROR)))
    errors = live.client().get("/api/status").json["recent_errors"]
    assert any(e["source"] == "test:status" and e["message"] == "it broke" for e in errors)


def test_devices_list_every_variable_with_its_description(live: LiveDaemon) -> None:
    devices = live.client().get("/api/devices").json["devices"]
    lamp = next(d for d in devices if d["key"] == "lamp")
    variables = {v["name"]: v for v in lamp["channels"][0]["variables"]}
    brightness = variables["brightness"]
    assert brightness["type"] == "int"
    assert brightness["access"] == {"read": True, "write": True, "query": True}
    assert brightness["range"]["min"] == 0 and brightness["range"]["max"] == 254
    assert brightness["known"] is True
    thermometer = next(d for d in devices if d["key"] == "thermometer")
    temperature = thermometer["channels"][0]["variables"][0]
    assert temperature["unit"] == "°C" and temperature["access"]["write"] is False
    only_demo = live.client().get("/api/devices?source=nobody").json["devices"]
    assert only_demo == []


def test_one_device_and_one_variable(live: LiveDaemon) -> None:
    lamp = peer(live, "lamp")
    client = live.client()
    assert client.get(f"/api/devices/{lamp}").json["name"] == "Demo lamp"
    state = client.get(f"/api/devices/{lamp}/0/state").json
    assert state["name"] == "state" and state["type"] == "bool"


def test_write_a_variable_reaches_the_device(live: LiveDaemon) -> None:
    lamp = peer(live, "lamp")
    answer = live.client().request("PUT", f"/api/devices/{lamp}/0/brightness",
                                   {"value": 120, "confirm": True})
    assert answer.status == 200, answer.body
    assert answer.json["value"] == 120
    assert live.call(lambda: live.daemon.registry.variable(lamp, 0, "brightness").value) == 120


def test_system_variables_create_read_write_delete(live: LiveDaemon) -> None:
    client = live.client()
    created = client.request("POST", "/api/sysvars", {"name": "mode", "value": "away"})
    assert created.status == 201 and created.json == {"name": "mode", "value": "away"}
    again = client.request("POST", "/api/sysvars", {"name": "mode", "value": "home"})
    assert again.status == 409 and again.error == "exists"
    written = client.request("PUT", "/api/sysvars/mode", {"value": {"$bytes": "AAE="}})
    assert written.json["value"] == {"$bytes": "AAE="}
    assert live.call(lambda: live.daemon.registry.get_system_variable("mode")) == b"\x00\x01"
    assert client.get("/api/sysvars/mode").json["value"] == {"$bytes": "AAE="}
    assert "mode" in client.get("/api/sysvars").json["variables"]
    assert client.request("DELETE", "/api/sysvars/mode").status == 200
    assert client.get("/api/sysvars/mode").status == 404


def test_nodes_and_their_processes(live: LiveDaemon) -> None:
    client = live.client()
    poll_until(lambda: all(n["process"] == "running"
                           for n in client.get("/api/nodes").json["nodes"]),
               what="both nodes running")
    nodes = {n["id"]: n for n in client.get("/api/nodes").json["nodes"]}
    assert set(nodes) == {"first", "second"}
    assert nodes["first"]["pid"] > 0 and nodes["first"]["restarts"] == 0
    assert nodes["first"]["crash_loop"] is False
    assert client.get("/api/nodes/second").json["id"] == "second"


def test_restart_a_node_gives_it_a_new_process(live: LiveDaemon) -> None:
    client = live.client()
    poll_until(lambda: client.get("/api/nodes/second").json["process"] == "running",
               what="node second running")
    before = client.get("/api/nodes/second").json["pid"]
    answer = client.request("POST", "/api/nodes/second/restart")
    assert answer.status == 200, answer.body
    poll_until(lambda: client.get("/api/nodes/second").json["process"] == "running",
               what="node second running again")
    assert client.get("/api/nodes/second").json["pid"] not in (None, before)


def test_flows_as_a_graph(live: LiveDaemon) -> None:
    graph = live.client().get("/api/flows").json
    assert graph["flows"] == ["f1"]
    assert {n["id"] for n in graph["nodes"]} == {"first", "second"}
    assert graph["wires"] == [{"from": "first", "output": 0, "to": {"id": "second", "port": 0}}]


def test_services_state_and_debug_lines_and_restart(live: LiveDaemon) -> None:
    client = live.client()
    poll_until(lambda: any("hello from Start" in line["message"] for line in
                           client.get("/api/services/greeter_py").json["recent"]),
               what="Greeter's Debug line")
    service = client.get("/api/services/greeter_py").json
    assert service["state"] == "running" and service["name"] == "Greeter"
    assert [s["id"] for s in client.get("/api/services").json["services"]] == ["greeter_py"]
    answer = client.request("POST", "/api/services/greeter_py/restart")
    assert answer.status == 200, answer.body
    assert answer.json["starts"] == service["starts"] + 1
    lines = [line["message"] for line in client.get("/api/services/greeter_py").json["recent"]]
    assert any("bye from Stop" in line for line in lines)


def test_log_lines_filtered_by_level_and_source(live: LiveDaemon) -> None:
    client = live.client()
    lines = client.get("/api/log?level=info&source=hadaemon.plugin.web").json["lines"]
    assert any("HTTP API on" in line["message"] for line in lines)
    assert all(line["source"].startswith("hadaemon.plugin.web") for line in lines)
    errors = client.get("/api/log?level=critical").json["lines"]
    assert all(line["level"] == "critical" for line in errors)
    assert len(client.get("/api/log?limit=1").json["lines"]) == 1


def test_zigbee_history_and_metrics_say_when_they_are_not_running(live: LiveDaemon) -> None:
    client = live.client()
    assert client.get("/api/zigbee").status == 404
    assert client.get("/api/zigbee").error == "not_enabled"
    missing = client.get("/api/history?source=demo&peer_id=1&channel=0&name=temperature")
    assert (missing.status, missing.error) == (404, "not_enabled")
    assert client.request("POST", "/api/zigbee/permit_join", {"seconds": 10}).status == 404
    assert client.get("/metrics").status == 404


def test_tokens_created_listed_revoked(live: LiveDaemon) -> None:
    client = live.client()
    made = client.request("POST", "/api/tokens", {"name": "script"})
    assert made.status == 201
    token_id, secret = made.json["id"], made.json["secret"]
    assert any(t["id"] == token_id for t in client.get("/api/tokens").json["tokens"])
    other = live.client()
    other.token = secret
    assert other.get("/api/session").json["kind"] == "token"
    assert client.request("DELETE", f"/api/tokens/{token_id}").status == 200
    assert other.get("/api/session").status == 401
    assert client.request("DELETE", f"/api/tokens/{token_id}").status == 404


def test_login_session_and_logout(live: LiveDaemon) -> None:
    client = live.client()
    client.token = None
    assert client.login().status == 200
    session = client.get("/api/session").json
    assert session["kind"] == "session" and session["csrf_token"] == client.csrf
    assert client.request("PUT", "/api/sysvars/by_session", {"value": 1}).status == 200
    assert client.request("POST", "/api/logout").status == 200
    assert client.get("/api/session").status == 401


def test_openapi_documents_every_route(live: LiveDaemon) -> None:
    answer = live.client().get("/api/openapi.json", auth=False)
    assert answer.status == 200
    document: dict[str, Any] = answer.json
    assert document["openapi"].startswith("3.")
    for route in routes.routes:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["summary"] == route.summary
        assert "200" in operation["responses"] or str(route.status) in operation["responses"]


def test_static_index_page_with_security_headers(live: LiveDaemon) -> None:
    answer = live.client().get("/", auth=False)
    assert answer.status == 200 and b"hadaemon" in answer.body
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
