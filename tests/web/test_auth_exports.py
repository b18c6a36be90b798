"""The public face of hadaemon.web.auth is what the web layer codes against."""

from __future__ import annotations

import dataclasses

import hadaemon.web.auth as auth


def test_the_exports_stay_what_they_are() -> None:
    assert sorted(auth.__all__) == sorted(["COOKIE_NAME", "ENV_PASSWORD", "AuthError",
                                           "LoginResult", "LoginThrottle", "Principal",
                                           "WebAuth"])
    assert (auth.COOKIE_NAME, auth.ENV_PASSWORD) == ("hadaemon_session",
                                                     "HADAEMON_ADMIN_PASSWORD")


def test_the_data_shapes_of_the_contract() -> None:
    assert [f.name for f in dataclasses.fields(auth.Principal)] == ["kind", "name",
                                                                    "csrf_token"]
    assert [f.name for f in dataclasses.fields(auth.LoginResult)] == ["principal",
                                                                      "set_cookie"]
    error = auth.AuthError(429, "too_many_attempts", "slow down", retry_after=2.5)
    assert (error.status, error.code, error.message, error.retry_after, str(error)) == (
        429, "too_many_attempts", "slow down", 2.5, "slow down")
    assert auth.AuthError(401, "login_required", "x").retry_after is None
