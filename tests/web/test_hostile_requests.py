"""Hostile requests written byte by byte (what an HTTP library would not send): odd
headers and credentials, numbers and text Python chokes on, NUL bytes and traversal in
paths, other methods. Each is a 4xx JSON error naming the problem, never a 500; the
first rows are regressions of bugs found by fuzzing."""

from __future__ import annotations

import json
import socket

import pytest

from tests.web.helpers import LiveDaemon

AUTH = "Authorization: Bearer {token}\r\n"


def send(live: LiveDaemon, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """``head`` (its ``{token}`` filled in, latin-1) and ``body`` on a new connection;
    the status, headers and body of the answer (read until the server closes)."""
    data = head.replace("{token}", live.token).encode("latin-1")
    if body:
        data += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
    data += b"Connection: close\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", live.port), timeout=20) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    top, _, content = answer.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, content


def put(name: str = "x") -> str:
    return f"PUT /api/sysvars/{name} HTTP/1.1\r\nHost: x\r\n{AUTH}"


def get(path: str, extra: str = "") -> str:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{AUTH}{extra}"


@pytest.mark.parametrize(("head", "body", "status", "error", "named"), [
    # regressions: each was a 500 (or the wrong answer) before
    ("GET /index.html%00.txt HTTP/1.1\r\nHost: x\r\n", b"", 404, "not_found", "no such"),
    ("POST /index.html HTTP/1.1\r\nHost: x\r\n", b"{}", 405, "method_not_allowed", "POST"),
    ("PUT / HTTP/1.1\r\nHost: x\r\n", b"{}", 405, "method_not_allowed", "PUT"),
    (put(), b'{"value": ' + b"9" * 5000 + b"}", 400, "malformed_json", "digits"),
    (put("lone"), b'{"value": "\\ud800"}', 400, "malformed_json", "surrogate"),
    (get("/api/events", "Last-Event-ID: x-" + "9" * 5000 + "\r\n"), b"", 400,
     "bad_last_event_id", "x-999"),
    (get("/api/devices/%D9%A1"), b"", 400, "bad_parameter", "peer_id"),
    (get("/api/devices/1_0"), b"", 400, "bad_parameter", "1_0"),
    (get("/api/log?limit=%20100"), b"", 400, "wrong_type", "limit"),
    # odd credentials
    ("GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n", b"", 401,
     "bad_authorization", "Bearer"),
    ("GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zm9vOmJhcg==\r\n", b"",
     401, "bad_authorization", "Bearer"),
    ("GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n", b"", 401,
     "token_unknown", "token"),
    ("GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + "a" * 15000 + "\r\n",
     b"", 401, "token_unknown", "token"),
    ("GET /api/status HTTP/1.1\r\nHost: x\r\nCookie: hadaemon_session=\xff; ;;=;a\r\n", b"",
     401, "login_required", "log in"),
    ("PUT /api/sysvars/x HTTP/1.1\r\nHost: x\r\nCookie: hadaemon_session=abc\r\n"
     "X-CSRF-Token: \xff\r\n", b'{"value": 1}', 401, "login_required", "log in"),
    # paths and queries
    (get("/api/sysvars/%ff%fe"), b"", 404, "unknown_variable", "system variable"),
    (get("/api/../../setup.cfg"), b"", 404, "not_found", "setup.cfg"),
    ("GET /..\\..\\setup.cfg HTTP/1.1\r\nHost: x\r\n", b"", 404, "not_found", "no such"),
    ("GET /%2e%2e%2f%2e%2e%2fsetup.cfg HTTP/1.1\r\nHost: x\r\n", b"", 404, "not_found",
     "no such"),
    (get("/api/log?limit=%zz"), b"", 400, "wrong_type", "%zz"),
    (get("/api/log?%ff=1"), b"", 400, "unknown_parameter", "known"),
    (get("/api/log?limit=" + "9" * 5000), b"", 400, "wrong_type", "limit"),
    (get("/api/devices/" + "9" * 5000), b"", 400, "bad_parameter", "peer_id"),
    (get("/api/events", "Last-Event-ID: \xff-\xfe\r\n"), b"", 400, "bad_last_event_id",
     "Last-Event-ID"),
    ("TRACE /api/status HTTP/1.1\r\nHost: x\r\n", b"", 405, "method_not_allowed", "TRACE"),
    # bodies
    (put(), b'{"value": {"$bytes": 5}}', 400, "bad_value", "base64"),
    (put(), b'{"value": NaN}', 400, "malformed_json", "NaN"),
])
def test_a_hostile_request_is_a_4xx_json_error_naming_it(live: LiveDaemon, head: str,
                                                         body: bytes, status: int,
                                                         error: str, named: str) -> None:
    got, headers, content = send(live, head, body)
    assert got == status, content
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff"
    document = json.loads(content)
    assert document["error"] == error
    assert named in document["message"]
    assert live.client().get("/api/status").status == 200


def test_a_lone_surrogate_is_not_stored(live: LiveDaemon) -> None:
    send(live, put("lone"), b'{"value": "\\ud800"}')
    assert live.call(lambda: "lone" in live.daemon.registry.system_variables()) is False
    # a surrogate pair is text, and welcome
    got, _, content = send(live, put("pair"), b'{"value": "\\ud83d\\ude00"}')
    assert got == 200 and json.loads(content)["value"] == "\U0001f600"


def test_head_of_the_event_stream_ends(live: LiveDaemon) -> None:
    got, headers, content = send(live, f"HEAD /api/events HTTP/1.1\r\nHost: x\r\n{AUTH}")
    assert got == 200 and content == b""
    assert headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("head", [
    "HELLO\r\n",
    "GET /api/status HTTP/9.9\r\nHost: x\r\n",
    put() + "Content-Length: abc\r\n",
    put() + "Content-Length: 12\r\nContent-Length: 13\r\n",
    put() + "Content-Length: 12\r\nTransfer-Encoding: chunked\r\n",
    "GET /api/sysvars/\xff HTTP/1.1\r\nHost: x\r\n",
])
def test_malformed_http_is_a_bare_400_and_the_connection_closed(live: LiveDaemon,
                                                                 head: str) -> None:
    # twisted.web refuses these before any request exists to answer in JSON
    got, _, _ = send(live, head)
    assert got == 400
    assert live.client().get("/api/status").status == 200
