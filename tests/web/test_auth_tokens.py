"""API tokens: shown once, stored hashed, valid until revoked, last use tracked."""

from __future__ import annotations

import pathlib

import pytest
from twisted.internet.task import Clock

from hadaemon.store import Store
from hadaemon.web.auth import AuthError, Principal, WebAuth
from hadaemon.web.auth.tokens import LAST_USED_EVERY, TOKEN_KEYS
from tests.web.auth_helpers import make_auth, open_store, request, result


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(1_700_000_000)
    return clock


@pytest.fixture
def store(tmp_path: pathlib.Path, clock: Clock) -> Store:
    return open_store(tmp_path, clock)


@pytest.fixture
def auth(store: Store, clock: Clock) -> WebAuth:
    return make_auth(store, clock)


def bearer(auth: WebAuth, token: str, *, state_changing: bool = False) -> Principal:
    return auth.require(request(authorization=f"Bearer {token}", method=b"POST"),
                        state_changing=state_changing)


def refusal(auth: WebAuth, authorization: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.require(request(authorization=authorization), state_changing=False)
    assert auth.authenticate(request(authorization=authorization)) is None
    return caught.value


def test_a_created_token_authenticates_as_its_name(auth: WebAuth) -> None:
    token_id, token = auth.create_token("backup script")
    assert token.startswith(f"hdt_{token_id}_") and len(token) > 50
    assert bearer(auth, token) == Principal("token", "backup script", None)
    # scripts send no CSRF token, and need none: no browser sends a bearer token by itself
    assert bearer(auth, token, state_changing=True).name == "backup script"


def test_the_token_is_stored_only_as_a_hash(auth: WebAuth, store: Store,
                                            tmp_path: pathlib.Path) -> None:
    token_id, token = auth.create_token("ci")
    record = store.get(TOKEN_KEYS + token_id)
    assert set(record) == {"name", "hash", "created", "last_used"}
    assert token not in repr(record) and token.encode() not in record["hash"]
    result(store.stopService())
    data = (tmp_path / "credentials.db").read_bytes()
    assert token.split("_")[-1].encode() not in data and b"ci" in data


def test_tokens_lists_without_secrets(auth: WebAuth, clock: Clock) -> None:
    first_id, first = auth.create_token("first")
    clock.advance(10)
    second_id, _ = auth.create_token("second")
    listed = auth.tokens()
    assert listed == [
        {"id": first_id, "name": "first", "created": 1_700_000_000.0, "last_used": None},
        {"id": second_id, "name": "second", "created": 1_700_000_010.0, "last_used": None},
    ]
    assert first not in repr(listed)


def test_last_used_is_tracked_and_written_at_most_once_a_minute(
        auth: WebAuth, store: Store, clock: Clock) -> None:
    token_id, token = auth.create_token("poller")
    clock.advance(5)
    bearer(auth, token)
    assert store.get(TOKEN_KEYS + token_id)["last_used"] == 1_700_000_005.0
    clock.advance(30)
    bearer(auth, token)
    # shown at once, but not written: a script polling every second must not grow the store
    assert auth.tokens()[0]["last_used"] == 1_700_000_035.0
    assert store.get(TOKEN_KEYS + token_id)["last_used"] == 1_700_000_005.0
    clock.advance(LAST_USED_EVERY)
    bearer(auth, token)
    assert store.get(TOKEN_KEYS + token_id)["last_used"] == 1_700_000_095.0


def test_a_revoked_token_is_refused_at_once(auth: WebAuth) -> None:
    token_id, token = auth.create_token("old")
    bearer(auth, token)
    assert auth.revoke_token(token_id) is True
    error = refusal(auth, f"Bearer {token}")
    assert (error.status, error.code) == (401, "token_unknown")
    assert auth.tokens() == []
    assert auth.revoke_token(token_id) is False


@pytest.mark.parametrize("token", [
    "hdt_000000000000_abcdef", "nonsense", "hdt_", "hdt_short_x", "Bearer",
])
def test_unknown_tokens_are_refused(auth: WebAuth, token: str) -> None:
    _token_id, real = auth.create_token("real")
    for guess in [token, real[:-1] + ("A" if real[-1] != "A" else "B")]:
        error = refusal(auth, f"Bearer {guess}")
        assert (error.status, error.code) == (401, "token_unknown")


@pytest.mark.parametrize("header", ["Basic YWRtaW46eA==", "Bearer", "Bearer   ", "token"])
def test_a_malformed_authorization_header_is_named(auth: WebAuth, header: str) -> None:
    error = refusal(auth, header)
    assert (error.status, error.code) == (401, "bad_authorization")
    assert "Bearer <token>" in error.message


def test_the_scheme_is_case_insensitive(auth: WebAuth) -> None:
    _id, token = auth.create_token("x")
    assert auth.require(request(authorization=f"bearer {token}"), state_changing=False)


def test_tokens_survive_a_restart(auth: WebAuth, store: Store, clock: Clock,
                                  tmp_path: pathlib.Path) -> None:
    _id, token = auth.create_token("kept")
    result(store.stopService())
    again = make_auth(open_store(tmp_path, clock), clock)
    assert bearer(again, token).name == "kept"


@pytest.mark.parametrize(("name", "problem"), [
    ("", "non-empty"),
    ("   ", "non-empty"),
    ("x" * 65, "at most 64"),
    ("bell\x07", "control characters"),
    (None, "non-empty"),
])
def test_bad_token_names_are_refused(auth: WebAuth, name: object, problem: str) -> None:
    with pytest.raises(AuthError) as caught:
        auth.create_token(name)  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.code) == (400, "bad_token_name")
    assert problem in caught.value.message
    assert auth.tokens() == []


def test_two_tokens_cannot_share_a_name(auth: WebAuth) -> None:
    token_id, _ = auth.create_token("script")
    with pytest.raises(AuthError, match=f"exists already \\(id {token_id}\\)"):
        auth.create_token(" script ")
