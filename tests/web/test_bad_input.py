"""Bad input of every kind gets a 4xx JSON error naming the problem; the daemon goes on."""

from __future__ import annotations

import socket

import pytest

from tests.web.helpers import LiveDaemon


def peer(live: LiveDaemon, key: str) -> int:
    return int(live.call(lambda: live.daemon.registry.find("demo", key).peer_id))


@pytest.mark.parametrize(("method", "path", "body", "status", "error", "named"), [
    ("GET", "/api/devices/abc", None, 400, "bad_parameter", "peer_id"),
    ("GET", "/api/devices/9999", None, 404, "unknown_device", "9999"),
    ("GET", "/api/devices/1/7/temperature", None, 404, "unknown_variable", "7"),
    ("GET", "/api/devices/1/0/nothing", None, 404, "unknown_variable", "nothing"),
    ("GET", "/api/sysvars/nothing", None, 404, "unknown_variable", "nothing"),
    ("DELETE", "/api/sysvars/nothing", None, 404, "unknown_variable", "nothing"),
    ("GET", "/api/nodes/nobody", None, 404, "unknown_node", "nobody"),
    ("POST", "/api/nodes/nobody/restart", None, 404, "unknown_node", "nobody"),
    ("GET", "/api/services/nobody", None, 404, "unknown_service", "nobody"),
    ("POST", "/api/services/nobody/restart", None, 404, "unknown_service", "nobody"),
    ("GET", "/api/nothing", None, 404, "not_found", "/api/nothing"),
    ("DELETE", "/api/status", None, 405, "method_not_allowed", "GET"),
    ("GET", "/api/log?level=loud", None, 400, "bad_parameter", "loud"),
    ("GET", "/api/log?limit=many", None, 400, "wrong_type", "limit"),
    ("GET", "/api/log?limit=0", None, 400, "out_of_range", "limit"),
    ("GET", "/api/log?colour=red", None, 400, "unknown_parameter", "colour"),
    ("PUT", "/api/sysvars/x", {}, 400, "missing_field", "value"),
    ("PUT", "/api/sysvars/x", {"value": 1, "extra": 2}, 400, "unknown_field", "extra"),
    ("PUT", "/api/sysvars/x", [1, 2], 400, "wrong_type", "object"),
    ("PUT", "/api/sysvars/x", {"value": {"$bytes": "!!"}}, 400, "bad_value", "base64"),
    ("POST", "/api/sysvars", {"name": 5, "value": 1}, 400, "wrong_type", "name"),
    ("POST", "/api/sysvars", {"name": "", "value": 1}, 400, "bad_name", "name"),
    ("POST", "/api/tokens", {"name": True}, 400, "wrong_type", "name"),
    ("GET", "/api/events?topics=a/%23/b", None, 400, "bad_topic", "a/#/b"),
    ("GET", "/api/events?tap=nobody/0", None, 404, "unknown_node", "nobody"),
    ("GET", "/api/events?tap=first/5", None, 404, "unknown_output", "5"),
    ("GET", "/api/events?tap=first", None, 400, "bad_parameter", "first"),
])
def test_bad_input_is_a_4xx_naming_the_problem(live: LiveDaemon, method: str, path: str,
                                               body: object, status: int, error: str,
                                               named: str) -> None:
    answer = live.client().request(method, path, body)
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json["error"] == error
    assert named in answer.json["message"]
    assert "Traceback" not in answer.body.decode()


def test_writes_are_checked_against_the_variable(live: LiveDaemon) -> None:
    client = live.client()
    lamp, thermometer = peer(live, "lamp"), peer(live, "thermometer")
    wrong_type = client.request("PUT", f"/api/devices/{lamp}/0/brightness", {"value": "lots"})
    assert (wrong_type.status, wrong_type.error) == (422, "invalid_value")
    assert "brightness" in wrong_type.json["message"]
    too_big = client.request("PUT", f"/api/devices/{lamp}/0/brightness", {"value": 999})
    assert (too_big.status, too_big.error) == (422, "invalid_value")
    assert "maximum" in too_big.json["message"]
    read_only = client.request("PUT", f"/api/devices/{thermometer}/0/temperature",
                               {"value": 1.0})
    assert (read_only.status, read_only.error) == (403, "read_only")
    bad_confirm = client.request("PUT", f"/api/devices/{lamp}/0/state",
                                 {"value": True, "confirm": "yes"})
    assert (bad_confirm.status, bad_confirm.error) == (400, "wrong_type")


def test_malformed_json_and_wrong_media_type(live: LiveDaemon) -> None:
    client = live.client()
    headers = {"Content-Type": "application/json"}
    broken = client.request("PUT", "/api/sysvars/x", body=b'{"value": ', headers=headers)
    assert (broken.status, broken.error) == (400, "malformed_json")
    assert "line 1" in broken.json["message"]
    nan = client.request("PUT", "/api/sysvars/x", body=b'{"value": NaN}', headers=headers)
    assert (nan.status, nan.error) == (400, "malformed_json")
    not_utf8 = client.request("PUT", "/api/sysvars/x", body=b'{"value": "\xff"}',
                              headers=headers)
    assert (not_utf8.status, not_utf8.error) == (400, "malformed_json")
    empty = client.request("PUT", "/api/sysvars/x", body=b"", headers=headers)
    assert (empty.status, empty.error) == (400, "body_missing")
    form = client.request("PUT", "/api/sysvars/x", body=b"value=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (form.status, form.error) == (415, "unsupported_media_type")
    deep = client.request("PUT", "/api/sysvars/x", body=b'{"value": ' + b"[" * 100000
                          + b"]" * 100000 + b"}", headers=headers)
    assert (deep.status, deep.error) == (400, "malformed_json")


def _raw(live: LiveDaemon, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", live.port), timeout=20) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_huge_body_is_refused_before_it_is_read(live: LiveDaemon) -> None:
    head = (f"PUT /api/sysvars/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live.token}"
            "\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n")
    answer = _raw(live, head.encode() + b'{"value": "')
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"error":"body_too_large"' in answer and b"50000000" in answer
    assert b"X-Content-Type-Options: nosniff" in answer


def test_a_huge_chunked_body_is_refused_too(live: LiveDaemon) -> None:
    head = (f"PUT /api/sysvars/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live.token}"
            "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 20
    answer = _raw(live, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 413")
    assert live.client().get("/api/status").status == 200


def test_missing_and_wrong_credentials(live: LiveDaemon) -> None:
    anonymous = live.client()
    anonymous.token = None
    for path in ("/api/status", "/api/devices", "/api/events", "/api/log", "/metrics"):
        answer = anonymous.get(path)
        assert answer.status == 401, path
        assert answer.json["message"]
    wrong = live.client()
    wrong.token = "not-a-token"
    assert wrong.get("/api/status").status == 401
    assert wrong.request("PUT", "/api/sysvars/x", {"value": 1}).status == 401
    bad_login = anonymous.request("POST", "/api/login", {"password": "guess"}, auth=False)
    assert (bad_login.status, bad_login.error) == (401, "bad_password")
    assert anonymous.get("/api/openapi.json").status == 200


def test_a_session_needs_the_csrf_token_to_change_state(live: LiveDaemon) -> None:
    client = live.client()
    client.token = None
    assert client.login().status == 200
    missing = client.request("PUT", "/api/sysvars/csrf", {"value": 1}, csrf=False)
    assert (missing.status, missing.error) == (403, "csrf_missing")
    wrong = client.request("PUT", "/api/sysvars/csrf", {"value": 1},
                           headers={"X-CSRF-Token": "forged"})
    assert (wrong.status, wrong.error) == (403, "csrf_mismatch")
    assert client.get("/api/sysvars").status == 200  # reads need no CSRF token
    assert live.call(lambda: "csrf" in live.daemon.registry.system_variables()) is False


def test_an_unexpected_exception_is_a_500_without_traceback(live: LiveDaemon) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    original = live.web.daemon.plugins  # status reads it: make it fail once
    live.call(setattr, live.web.daemon, "plugins", None)
    try:
        answer = live.client().get("/api/status")
    finally:
        live.call(setattr, live.web.daemon, "plugins", original)
    assert (answer.status, answer.error) == (500, "internal")
    assert "Traceback" not in answer.body.decode() and "NoneType" not in answer.body.decode()
    assert live.client().get("/api/status").status == 200


def test_a_write_the_adapter_refuses_is_a_502_naming_it(live: LiveDaemon) -> None:
    # The demo button is written through its adapter, which refuses every write.
    button = peer(live, "button")
    spec = live.call(lambda: live.daemon.registry.variable(button, 0, "action").spec)
    assert not spec.writable  # (so a writable variable of it is made for the test)
    from hadaemon.registry import Access, ChannelSpec, ValueType, VariableSpec

    demo = live.daemon.plugin("demo")
    live.call(lambda: live.daemon.registry.add_device(
        "demo", "button", "Demo button",
        [ChannelSpec(0, [VariableSpec("action", ValueType.ENUM, Access.ALL,
                                      values=("single", "double"))])], demo))
    answer = live.client().request("PUT", f"/api/devices/{button}/0/action",
                                   {"value": "single"})
    assert (answer.status, answer.error) == (502, "write_failed")
    assert "demo" in answer.json["message"] and "cannot be written" in answer.json["message"]


def test_static_files_list_no_directory_and_leave_no_way_out(live: LiveDaemon) -> None:
    client = live.client()
    for path in ("/../setup.cfg", "/%2e%2e/setup.cfg", "/..%2fsetup.cfg", "/nothing.html",
                 "/index.html/x"):
        answer = client.get(path, auth=False)
        assert answer.status == 404, path
        assert b"[metadata]" not in answer.body
        assert answer.headers["x-content-type-options"] == "nosniff"
