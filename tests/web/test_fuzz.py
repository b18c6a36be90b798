"""Hostile input, generated from the API's own OpenAPI document (schemathesis on
hypothesis), sent through real HTTP to a real daemon: every operation with a token, with
a session and its CSRF token, with a session without it, and with no credentials.

What must hold: no 500, every error a JSON ``{"error", "message"}`` naming the problem,
answers as the document says (schemathesis' checks), state-changing requests without
credentials or CSRF token refused. Derandomized and small for CI;
``HADAEMON_FUZZ_EXAMPLES=500`` for a longer session by hand.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.schemas  # (see below)
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.web.helpers import Client, LiveDaemon

# schemathesis imports its OpenAPI module when the first schema loads, and pytest rewrites
# it then (schemathesis is a pytest plugin). On CPython 3.11 before 3.11.8 that parse can
# fail mid-suite with "SystemError: AST constructor recursion depth mismatch" (CPython
# gh-106905; seen after tests/core): imported above, it is parsed at collection instead.
EXAMPLES = int(os.environ.get("HADAEMON_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit,
                                                                 Phase.generate])


@pytest.fixture(scope="module")
def api_schema(live: LiveDaemon) -> Any:
    # (the event stream never ends: its bad queries are in test_bad_input.py)
    loaded = schemathesis.openapi.from_url(f"http://127.0.0.1:{live.port}/api/openapi.json")
    return loaded.exclude(path="/api/events")


@pytest.fixture
def session(live: LiveDaemon) -> Client:
    client = live.client()
    assert client.login().status == 200
    return client


def credentials(who: str, live: LiveDaemon, session: Client) -> dict[str, str]:
    if who == "token":
        return {"Authorization": f"Bearer {live.token}"}
    if who == "nobody":
        return {}
    headers = {"Cookie": str(session.cookie)}
    if who == "session":
        headers["X-CSRF-Token"] = str(session.csrf)
    return headers


def check_error(status: int, content_type: str, body: bytes, what: str) -> None:
    """An error is JSON ``{"error": word, "message": text}``, never a traceback."""
    assert status != 500, f"{what}: 500 {body!r}"
    assert b"Traceback" not in body, what
    if status >= 400:
        assert content_type.startswith("application/json"), f"{what}: {content_type}"
        document = json.loads(body)
        assert isinstance(document.get("error"), str) and document["error"], what
        assert isinstance(document.get("message"), str) and document["message"], what


def _login_with_a_password(case: Any) -> bool:
    # Every failed login slows the client's next ones down (then locks it out): the
    # throttle has its own tests. Bodies the route refuses before the password check
    # (wrong types, unknown fields) are still sent.
    body = case.body
    return (case.operation.path == "/api/login" and isinstance(body, dict)
            and isinstance(body.get("password"), str) and set(body) == {"password"})


@pytest.mark.parametrize("who", ["token", "session", "session-without-csrf", "nobody"])
def test_every_operation_answers_hostile_input_plainly(who: str, api_schema: Any,
                                                       live: LiveDaemon,
                                                       session: Client) -> None:
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def send(case: Any) -> None:
            try:
                fuzz(case, who, live, session)
            except (AssertionError, schemathesis.errors.SchemathesisError,
                    BaseExceptionGroup) as exc:  # every operation is tried; all are said
                failures.append(f"{case.operation.label}: {exc}")

        send()
    assert not failures, "\n\n".join(failures[:20])


def fuzz(case: Any, who: str, live: LiveDaemon, session: Client) -> None:
    """Send ``case`` as ``who`` and check the answer (see the module docstring)."""
    if _login_with_a_password(case):
        return
    operation = case.operation
    base = f"http://127.0.0.1:{live.port}"
    headers = credentials(who, live, session)
    for name in [k for k in case.headers or {} if k.lower() in ("authorization", "cookie",
                                                                  "x-csrf-token")]:
        if who != "nobody":  # (generated credentials: sent only without real ones)
            del case.headers[name]
    if who != "nobody":
        case.cookies = {}
    response = case.call(base_url=base, headers=headers, timeout=30)
    status = response.status_code
    content_type = response.headers.get("content-type", [""])[0]
    if operation.path == "/api/logout" and status == 200:
        session.login()  # (fuzzing goes on with a new session)
    what = f"{who}: {operation.label} {case.path_parameters} {case.query} {case.body!r}"
    check_error(status, content_type, response.content, what)
    definition = operation.definition.raw
    public = definition.get("security") == []
    writes = operation.method.upper() in ("POST", "PUT", "DELETE")
    if who == "nobody" and not public:
        assert status == 401, what
    elif who == "session-without-csrf" and writes and not public:
        assert (status, json.loads(response.content)["error"]) == (403, "csrf_missing"), what
    elif who in ("token", "session"):
        assert status != 401, what  # the credentials are good all along
        # schemathesis' checks: documented status codes, content types and schemas, bad
        # data refused. Not "good data accepted": the document does not say every rule
        # (a log level's names, a tap's <node>/<output>), and the handler's 400 names it.
        case.validate_response(response, headers=headers,
                               excluded_checks=[positive_data_acceptance])
