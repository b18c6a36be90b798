"""Login, the session cookie, CSRF tokens and the password from the environment."""

from __future__ import annotations

import pathlib

import pytest
from twisted.internet.task import Clock

from hadaemon.web.auth import COOKIE_NAME, ENV_PASSWORD, AuthError, Principal, WebAuth
from tests.web.auth_helpers import (
    PASSWORD,
    cheap_auth,
    cookie_value,
    make_auth,
    open_store,
    request,
    result,
    set_cheap_password,
    start,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: pathlib.Path, clock: Clock) -> WebAuth:
    return cheap_auth(tmp_path, clock, session_ttl=3600.0)


def refused(auth: WebAuth, **kwargs: object) -> AuthError:
    state_changing = bool(kwargs.pop("state_changing", False))
    with pytest.raises(AuthError) as caught:
        auth.require(request(**kwargs), state_changing=state_changing)  # type: ignore[arg-type]
    assert auth.authenticate(request(**kwargs)) is None or state_changing  # type: ignore[arg-type]
    return caught.value


def test_login_gives_an_httponly_strict_cookie_and_a_csrf_token(auth: WebAuth) -> None:
    login = result(auth.login(PASSWORD, client="10.0.0.2"))
    assert login.principal.kind == "session" and login.principal.name == "admin"
    assert login.principal.csrf_token and len(login.principal.csrf_token) >= 40
    parts = login.set_cookie.decode().split("; ")
    assert parts[0].startswith(f"{COOKIE_NAME}=") and len(cookie_value(login.set_cookie)) >= 40
    assert sorted(parts[1:]) == sorted(["Path=/", "Max-Age=3600", "HttpOnly",
                                        "SameSite=Strict"])
    # the cookie is the session, and the session's CSRF token comes with it
    principal = auth.require(request(cookie=cookie_value(login.set_cookie)),
                             state_changing=False)
    assert principal == login.principal


def test_the_cookie_is_secure_under_tls(tmp_path: pathlib.Path, clock: Clock) -> None:
    auth = cheap_auth(tmp_path, clock, secure=True)
    cookie = result(auth.login(PASSWORD, client="c")).set_cookie.decode()
    assert cookie.split("; ")[-1] == "Secure"
    assert auth.logout(request()).decode().endswith("; Secure")


def test_each_login_is_its_own_session(auth: WebAuth) -> None:
    one = result(auth.login(PASSWORD, client="a"))
    two = result(auth.login(PASSWORD, client="a"))
    assert cookie_value(one.set_cookie) != cookie_value(two.set_cookie)
    assert one.principal.csrf_token != two.principal.csrf_token
    assert len(auth.sessions) == 2


def test_wrong_password_is_refused(auth: WebAuth, clock: Clock) -> None:
    outcome = start(auth.login("not the password", client="a"))
    clock.advance(auth.throttle.max_delay)
    error = outcome[0].value
    assert isinstance(error, AuthError)
    assert (error.status, error.code, error.message) == (401, "bad_password", "wrong password")
    assert len(auth.sessions) == 0


@pytest.mark.parametrize("password", ["", "x" * 1025, None])
def test_empty_or_huge_passwords_are_bad_requests(auth: WebAuth, password: object) -> None:
    with pytest.raises(AuthError) as caught:
        result(auth.login(password, client="a"))  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.code) == (400, "bad_password")
    assert auth.throttle.failures("a") == 0


def test_no_password_set_says_how_to_set_one(tmp_path: pathlib.Path, clock: Clock) -> None:
    auth = make_auth(open_store(tmp_path, clock), clock)
    assert not auth.password_set() and auth.password_source() is None
    with pytest.raises(AuthError) as caught:
        result(auth.login("anything at all", client="a"))
    assert (caught.value.status, caught.value.code) == (403, "no_password_set")
    assert "hadaemon passwd" in caught.value.message and ENV_PASSWORD in caught.value.message


def test_the_environment_password_is_the_password(tmp_path: pathlib.Path,
                                                   clock: Clock) -> None:
    store = open_store(tmp_path, clock)
    set_cheap_password(store)
    auth = make_auth(store, clock, environ={ENV_PASSWORD: "from the container"})
    assert auth.password_set() and auth.password_source() == "environment"
    assert result(auth.login("from the container", client="a")).principal.name == "admin"
    # the stored one is not used while the environment sets one
    outcome = start(auth.login(PASSWORD, client="b"))
    clock.advance(auth.throttle.max_delay)
    assert outcome[0].value.code == "bad_password"


def test_an_empty_environment_variable_sets_no_password(tmp_path: pathlib.Path,
                                                        clock: Clock) -> None:
    auth = make_auth(open_store(tmp_path, clock), clock, environ={ENV_PASSWORD: ""})
    assert not auth.password_set()


def test_without_credentials_login_is_required(auth: WebAuth) -> None:
    error = refused(auth)
    assert (error.status, error.code) == (401, "login_required")
    assert "POST /api/login" in error.message and "Bearer" in error.message


def test_an_unknown_cookie_is_no_session(auth: WebAuth) -> None:
    error = refused(auth, cookie="made-up-session-id")
    assert (error.status, error.code) == (401, "login_required")
    assert "log in again" in error.message


def test_sessions_expire(auth: WebAuth, clock: Clock) -> None:
    cookie = cookie_value(result(auth.login(PASSWORD, client="a")).set_cookie)
    clock.advance(3599)
    assert auth.authenticate(request(cookie=cookie)) is not None
    clock.advance(1)
    assert refused(auth, cookie=cookie).code == "login_required"
    assert len(auth.sessions) == 0


def test_logout_ends_the_session_and_clears_the_cookie(auth: WebAuth) -> None:
    cookie = cookie_value(result(auth.login(PASSWORD, client="a")).set_cookie)
    cleared = auth.logout(request(cookie=cookie)).decode()
    assert cleared.startswith(f"{COOKIE_NAME}=; ") and "Max-Age=0" in cleared
    assert "HttpOnly" in cleared and "SameSite=Strict" in cleared
    assert refused(auth, cookie=cookie).code == "login_required"


def test_a_new_password_ends_every_session(auth: WebAuth) -> None:
    cookie = cookie_value(result(auth.login(PASSWORD, client="a")).set_cookie)
    auth.set_password("another good password")
    assert refused(auth, cookie=cookie).code == "login_required"


def test_sessions_are_bounded(auth: WebAuth) -> None:
    cookies = [cookie_value(result(auth.login(PASSWORD, client="a")).set_cookie)
               for _ in range(auth.sessions.max_sessions + 1)]
    assert len(auth.sessions) == auth.sessions.max_sessions
    assert auth.authenticate(request(cookie=cookies[0])) is None  # the oldest ended
    assert auth.authenticate(request(cookie=cookies[-1])) is not None


def test_session_ids_are_kept_only_hashed(auth: WebAuth) -> None:
    cookie = cookie_value(result(auth.login(PASSWORD, client="a")).set_cookie)
    assert cookie not in repr(vars(auth.sessions))


# -- CSRF -------------------------------------------------------------------------------


@pytest.fixture
def session(auth: WebAuth) -> tuple[Principal, str, str]:
    """A logged-in session: (principal, cookie, CSRF token)."""
    login = result(auth.login(PASSWORD, client="a"))
    csrf = login.principal.csrf_token
    assert csrf is not None
    return login.principal, cookie_value(login.set_cookie), csrf


def test_reading_needs_no_csrf_token(auth: WebAuth,
                                     session: tuple[Principal, str, str]) -> None:
    principal, cookie, _csrf = session
    assert auth.require(request(cookie=cookie), state_changing=False) == principal


def test_a_change_without_the_csrf_token_is_refused(
        auth: WebAuth, session: tuple[Principal, str, str]) -> None:
    _principal, cookie, _csrf = session
    error = refused(auth, cookie=cookie, state_changing=True, method=b"POST")
    assert (error.status, error.code) == (403, "csrf_missing")
    assert "X-CSRF-Token" in error.message


def test_a_change_with_another_csrf_token_is_refused(
        auth: WebAuth, session: tuple[Principal, str, str]) -> None:
    _principal, cookie, csrf = session
    other = result(auth.login(PASSWORD, client="a")).principal.csrf_token
    for wrong in [other, csrf[:-1], csrf + "x", "é", " " + csrf]:
        error = refused(auth, cookie=cookie, csrf=wrong, state_changing=True)
        assert (error.status, error.code) == (403, "csrf_mismatch")


def test_a_change_with_the_csrf_token_passes(auth: WebAuth,
                                             session: tuple[Principal, str, str]) -> None:
    principal, cookie, csrf = session
    got = auth.require(request(cookie=cookie, csrf=csrf, method=b"DELETE"),
                       state_changing=True)
    assert got == principal


def test_the_process_environment_is_read_by_default(tmp_path: pathlib.Path, clock: Clock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.internet.defer import maybeDeferred

    auth = WebAuth(open_store(tmp_path, clock), reactor=clock, secure=False,
                   run_in_thread=maybeDeferred)
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    assert not auth.password_set()
    monkeypatch.setenv(ENV_PASSWORD, "set for the container")  # read on each login
    assert auth.password_source() == "environment"
    assert result(auth.login("set for the container", client="a")).principal.kind == "session"
