"""The admin password as a slow, salted hash (scrypt from the standard library).

Pure functions with no I/O and no Twisted: they take ~0.1 s of CPU and 32 MiB on
purpose, so callers on the reactor thread run them in a thread (see ``WebAuth.login``).
May be called in any thread.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

ENV_PASSWORD = "HADAEMON_ADMIN_PASSWORD"

#: scrypt's cost: N=2**15, r=8 needs 128*r*N = 32 MiB and ~0.1 s per hash on a laptop
#: core, so guessing offline from a stolen credentials file is slow, and a small board
#: can still afford one login at a time.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 8
MAX_LENGTH = 1024  # bounds the work a single login can ask for

# Parameters read back from the store are bounded, so a damaged or hostile record
# cannot make one login take minutes or gigabytes.
_LIMITS = {"n": (2**10, 2**18), "r": (1, 16), "p": (1, 16)}


class BadPasswordRecord(ValueError):
    """A stored password record that is not one this module wrote (names the field)."""


def check_new_password(password: object) -> str | None:
    """Why ``password`` cannot be set (None when it can)."""
    if not isinstance(password, str):
        return "the password must be a string"
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    if any(ch in password for ch in "\r\n\x00"):
        return "the password must not contain line breaks or NUL characters"
    return None


def hash_password(password: str, *, salt: bytes | None = None, n: int = SCRYPT_N,
                  r: int = SCRYPT_R, p: int = SCRYPT_P) -> dict[str, Any]:
    """The record to store: algorithm, parameters, salt and hash; never the password."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, n, r, p, HASH_BYTES)
    return {"algorithm": "scrypt", "n": n, "r": r, "p": p, "salt": salt, "hash": digest}


def verify_password(password: str, record: Mapping[str, Any]) -> bool:
    """Whether ``password`` matches ``record`` (constant-time compare of the hashes)."""
    n, r, p, salt, expected = parse_record(record)
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(expected)), expected)


def verify_plain(password: str, expected: str) -> bool:
    """Compare with a password given in clear (the environment variable) in constant
    time: digests of equal length, so neither the length nor a prefix leaks."""
    given = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    wanted = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given, wanted)


def parse_record(record: Mapping[str, Any]) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, hash) of a stored record; :class:`BadPasswordRecord` if damaged."""
    if not isinstance(record, Mapping):
        raise BadPasswordRecord("the stored password is not a record")
    if record.get("algorithm") != "scrypt":
        raise BadPasswordRecord("the stored password's algorithm is not scrypt")
    values: list[int] = []
    for name, (low, high) in _LIMITS.items():
        value = record.get(name)
        if type(value) is not int or not low <= value <= high:
            raise BadPasswordRecord(
                f"the stored password's parameter {name!r} is not an int in {low}..{high}")
        values.append(value)
    n, r, p = values
    if n & (n - 1):
        raise BadPasswordRecord("the stored password's parameter 'n' is not a power of 2")
    salt, digest = record.get("salt"), record.get("hash")
    if not isinstance(salt, bytes) or not salt:
        raise BadPasswordRecord("the stored password's 'salt' is not non-empty bytes")
    if not isinstance(digest, bytes) or not 16 <= len(digest) <= 64:
        raise BadPasswordRecord("the stored password's 'hash' is not 16..64 bytes")
    return n, r, p, salt, digest


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # surrogatepass: any str can be hashed, and the same str always hashes the same way.
    # OpenSSL needs 128*r*(n + p + 2) bytes; a MiB more leaves room for its bookkeeping.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r,
                          p=p, dklen=length, maxmem=maxmem)
