"""The admin password: only a salted scrypt hash is stored, compared in constant time."""

from __future__ import annotations

import pathlib

import pytest
from twisted.internet.task import Clock

from hadaemon.web.auth import AuthError
from hadaemon.web.auth.passwords import (
    BadPasswordRecord,
    check_new_password,
    hash_password,
    parse_record,
    verify_password,
    verify_plain,
)
from hadaemon.web.auth.webauth import PASSWORD_KEY
from tests.web.auth_helpers import PASSWORD, make_auth, open_store, result


def test_right_password_accepted_wrong_refused() -> None:
    record = hash_password(PASSWORD, n=2**10)
    assert verify_password(PASSWORD, record)
    assert not verify_password(PASSWORD + " ", record)
    assert not verify_password(PASSWORD.upper(), record)
    assert not verify_password("", record)


def test_record_holds_scrypt_parameters_salt_and_hash_never_the_password() -> None:
    record = hash_password(PASSWORD)
    assert record["algorithm"] == "scrypt"
    assert (record["n"], record["r"], record["p"]) == (2**15, 8, 1)
    assert len(record["salt"]) == 16 and len(record["hash"]) == 32
    assert PASSWORD not in repr(record)
    assert PASSWORD.encode() not in b"".join(v for v in record.values() if isinstance(v, bytes))
    # a fresh salt every time: the same password never gives the same record twice
    assert hash_password(PASSWORD)["hash"] != record["hash"]


def test_stored_parameters_are_used_to_verify() -> None:
    # a record written with other parameters (older or newer defaults) still verifies
    record = hash_password(PASSWORD, n=2**11, r=4, p=2)
    assert verify_password(PASSWORD, record)
    assert not verify_password("something else", record)


@pytest.mark.parametrize(("change", "named"), [
    ({"algorithm": "md5"}, "algorithm"),
    ({"n": 2**30}, "'n'"),
    ({"n": 3000}, "power of 2"),
    ({"r": "8"}, "'r'"),
    ({"salt": b""}, "'salt'"),
    ({"hash": b"short"}, "'hash'"),
])
def test_damaged_records_are_refused_with_the_field_named(change: dict[str, object],
                                                          named: str) -> None:
    record = {**hash_password(PASSWORD, n=2**10), **change}
    with pytest.raises(BadPasswordRecord, match=named):
        parse_record(record)


@pytest.mark.parametrize(("password", "problem"), [
    ("short", "at least 8"),
    ("x" * 1025, "at most 1024"),
    ("two\nlines", "line breaks"),
    (12345678, "a string"),
])
def test_new_passwords_are_checked(password: object, problem: str) -> None:
    assert problem in (check_new_password(password) or "")


def test_plain_compare_for_the_environment_password() -> None:
    assert verify_plain("from env 123", "from env 123")
    assert not verify_plain("from env 12", "from env 123")
    assert not verify_plain("", "from env 123")


def test_set_password_stores_only_the_hash_on_disk(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    store = open_store(tmp_path, clock)
    auth = make_auth(store, clock)
    assert not auth.password_set()
    auth.set_password(PASSWORD)
    assert auth.password_set() and auth.password_source() == "store"
    result(store.stopService())
    data = (tmp_path / "credentials.db").read_bytes()
    assert PASSWORD.encode() not in data
    assert (tmp_path / "credentials.db").stat().st_mode & 0o777 == 0o600
    # and it is still the password after a restart
    store = open_store(tmp_path, clock)
    stored = store.get(PASSWORD_KEY)
    assert verify_password(PASSWORD, stored) and not verify_password("nope nope", stored)


def test_set_password_refuses_a_weak_one(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    store = open_store(tmp_path, clock)
    with pytest.raises(AuthError) as caught:
        make_auth(store, clock).set_password("abc")
    assert (caught.value.status, caught.value.code) == (400, "bad_password")
    assert "at least 8" in caught.value.message
    assert store.get(PASSWORD_KEY) is None


def test_a_damaged_stored_record_counts_as_no_password(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    store = open_store(tmp_path, clock)
    store.put(PASSWORD_KEY, {"algorithm": "scrypt", "n": 7})
    auth = make_auth(store, clock)
    assert not auth.password_set()
    auth.set_password(PASSWORD)
    assert auth.password_set()
