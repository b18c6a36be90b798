"""A 401 ``login_required`` says whether an admin password is set: the console's login
page shows "no password yet, here is how to set one" at once, before any try. It says
that and nothing else."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from twisted.internet.task import Clock

from hadaemon.web import WebPlugin
from hadaemon.web.auth import AuthError, WebAuth
from tests.web.auth_helpers import make_auth, open_store, request, set_cheap_password
from tests.web.helpers import LiveDaemon, make_config


class NoPasswordAtAllWeb(WebPlugin):
    """The real auth on the daemon's (empty) credentials store, no environment password:
    a daemon nobody has set a password for."""

    def make_auth(self) -> Any:
        return WebAuth(self.context.credentials, reactor=self.reactor,
                       secure=self.settings.tls, environ={})


def login_required(auth: WebAuth, **kwargs: Any) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.require(request(**kwargs), state_changing=False)  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.code) == (401, "login_required")
    return caught.value


def test_login_required_says_whether_a_password_is_set(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    store = open_store(tmp_path, clock)
    auth = make_auth(store, clock)
    assert login_required(auth).details == {"password_set": False}
    assert login_required(auth, cookie="ended-session").details == {"password_set": False}
    set_cheap_password(store)
    assert login_required(auth).details == {"password_set": True}
    # other refusals carry nothing more
    with pytest.raises(AuthError) as caught:
        auth.require(request(authorization="Bearer nope"), state_changing=False)  # type: ignore[arg-type]
    assert caught.value.code == "token_unknown" and caught.value.details == {}


def test_a_daemon_without_a_password_says_so_before_any_login(tmp_path: pathlib.Path) -> None:
    with LiveDaemon(make_config(tmp_path), web=NoPasswordAtAllWeb) as live:
        answer = live.client().request("GET", "/api/session", auth=False)
        assert answer.status == 401
        # exactly these fields: nothing else leaks
        assert set(answer.json) == {"error", "message", "password_set"}
        assert (answer.json["error"], answer.json["password_set"]) == ("login_required", False)
        assert answer.headers["content-type"].startswith("application/json")
        # an ended or made-up session is told the same
        answer = live.client().request("GET", "/api/session", auth=False,
                                       headers={"Cookie": "hadaemon_session=made-up"})
        assert (answer.status, answer.json["password_set"]) == (401, False)
        # and a login confirms it
        answer = live.client().login("anything at all")
        assert (answer.status, answer.error) == (403, "no_password_set")
        # the daemon runs on, and a token still reads
        assert live.client().get("/api/session").json["kind"] == "token"


def test_a_daemon_with_a_password_says_so(tmp_path: pathlib.Path) -> None:
    with LiveDaemon(make_config(tmp_path)) as live:
        for path in ("/api/session", "/api/devices"):
            answer = live.client().request("GET", path, auth=False)
            assert answer.status == 401
            assert answer.json == {"error": "login_required", "message": answer.json["message"],
                                   "password_set": True}
        # a wrong token is refused without it
        answer = live.client().request("GET", "/api/session", auth=False,
                                       headers={"Authorization": "Bearer wrong"})
        assert (answer.status, answer.error) == (401, "token_unknown")
        assert "password_set" not in answer.json
        # the OpenAPI document describes the field
        document = live.client().get("/api/openapi.json").json
        error = document["components"]["schemas"]["Error"]["properties"]
        assert error["password_set"]["type"] == "boolean"
        assert "password_set" in document["paths"]["/api/session"]["get"]["summary"]
