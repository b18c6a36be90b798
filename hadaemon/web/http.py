"""HTTP plumbing of the API: JSON errors, security headers, request size limits.

Every answer carries the security headers, including the static files, twisted.web's own
error pages and the 413 written before a too-large body is read. Errors are JSON
``{"error": code, "message": text}`` naming the problem; an unexpected exception is a
500 with no traceback (it is logged).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger
from twisted.web import server

from hadaemon.web.jsonvalues import dumps

_log = Logger(namespace="hadaemon.plugin.web")

SECURITY_HEADERS: Mapping[bytes, bytes] = {
    b"Content-Security-Policy": b"default-src 'self'; frame-ancestors 'none'; "
                                b"base-uri 'none'; form-action 'self'",
    b"X-Frame-Options": b"DENY",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"Cache-Control": b"no-store",
}
JSON_TYPE = b"application/json; charset=utf-8"


class RawJson(bytes):
    """An answer already encoded as JSON (the device list composes its own)."""


class ApiError(Exception):
    """A 4xx (or 5xx) answer: ``code`` is a stable word for scripts, ``message`` for people."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[bytes, bytes] | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def document(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def not_found(what: str, message: str) -> ApiError:
    return ApiError(404, f"unknown_{what}", message)


def write_json(request: server.Request, status: int, document: Any,
               headers: Mapping[bytes, bytes] | None = None) -> None:
    """Answer ``document`` as JSON and finish the request (if the client is still there)."""
    if getattr(request, "_disconnected", False) or request.finished:
        return
    body = bytes(document) if isinstance(document, RawJson) else dumps(document)
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON_TYPE)
    request.setHeader(b"Content-Length", str(len(body)).encode())
    for name, value in (headers or {}).items():
        request.setHeader(name, value)
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def write_error(request: server.Request, error: ApiError) -> None:
    write_json(request, error.status, error.document(), error.headers)


def parse_json_body(request: server.Request) -> Any:
    """The request's body as JSON; ApiError 400/415 naming what is wrong with it."""
    content = request.content
    raw = content.read() if content is not None else b""
    if not raw.strip():
        raise bad_request("body_missing", "this endpoint takes a JSON body")
    kind = (request.getHeader(b"Content-Type") or b"application/json").split(b";")[0].strip()
    if kind.lower() != b"application/json":
        raise ApiError(415, "unsupported_media_type",
                       f"the body must be application/json, got {kind.decode('latin-1')}")
    try:
        document = json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise bad_request("malformed_json", "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise bad_request(
            "malformed_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}") from None
    except ValueError as exc:  # Python's limit on an integer's digits
        raise bad_request("malformed_json", f"the body has a number Python refuses: "
                          f"{str(exc)[:80]}") from None
    except RecursionError:
        raise bad_request("malformed_json", "the body is nested too deeply") from None
    if _SURROGATE.search(raw):
        # "\ud800" alone is valid JSON but no text: it could be stored, and then no
        # answer or event showing it could be encoded (pairs are fine)
        try:
            json.dumps(document, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise bad_request("malformed_json", "the body has a lone UTF-16 surrogate "
                              "(\\ud800-\\udfff without its pair): not text") from None
    return document


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def closing_answer(status: bytes, code: str, message: str,
                   extra: tuple[bytes, ...] = ()) -> bytes:
    """A whole JSON error answer as bytes, for the transport itself (no request to answer
    through: a body refused unread, a connection over the cap); the connection closes."""
    body = dumps({"error": code, "message": message})
    head = [b"HTTP/1.1 " + status, b"Content-Type: " + JSON_TYPE,
            b"Content-Length: " + str(len(body)).encode(), b"Connection: close", *extra]
    head.extend(name + b": " + value for name, value in SECURITY_HEADERS.items())
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class ApiRequest(server.Request):
    """A request that refuses bodies over the site's ``max_body`` before reading them, and
    carries the security headers whatever answers it."""

    _too_large = False
    _received = 0

    def _limit(self) -> int:
        return int(getattr(getattr(self.channel, "site", None), "max_body", 1024 * 1024))

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self._limit():
            self._refuse_body(f"the body has {length} bytes; at most {self._limit()} "
                              "are accepted")
            return
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        if self._too_large:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse_body(f"the body is longer than the {self._limit()} bytes accepted")
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def _refuse_body(self, message: str) -> None:
        # Answered at once, the connection closed: the rest of the body is never read.
        self._too_large = True
        self.content = io.BytesIO()
        transport = self.channel.transport
        if transport is not None:
            transport.write(closing_answer(b"413 Request Entity Too Large",
                                           "body_too_large", message))
            transport.loseConnection()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._too_large:
            return
        super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]

    def process(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.responseHeaders.setRawHeaders(name, [value])
        if getattr(getattr(self.channel, "site", None), "tls", False):
            self.responseHeaders.setRawHeaders(b"Strict-Transport-Security",
                                               [b"max-age=31536000"])
        super().process()  # type: ignore[no-untyped-call]

    def processingFailed(self, reason: Any) -> None:
        # twisted.web's default page shows the traceback when displayTracebacks is on;
        # ours never does. (Our API resources catch their own errors; this is the rest.)
        getattr(self.site, "_log", _log).failure("request {uri} failed", failure=reason,
                               uri=self.uri.decode("latin-1"))
        if not self.finished and not getattr(self, "_disconnected", False):
            self.setResponseCode(500)
            write_json(self, 500, {"error": "internal",
                                   "message": "an unexpected error; it is logged"})
