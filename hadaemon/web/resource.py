"""The resources: the API dispatcher (one leaf for every declared route) and the static
files of the console, with JSON errors wherever twisted.web would answer HTML."""

from __future__ import annotations

import inspect
import pathlib
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from twisted.internet import protocol
from twisted.python.failure import Failure
from twisted.web import resource, server, static
from twisted.web.server import Request

from hadaemon.aio import as_deferred
from hadaemon.bus import BusError, QueueFull
from hadaemon.registry import (
    ConfirmationTimeout,
    InvalidValue,
    ReadOnly,
    RegistryError,
    SystemVariableNotFound,
    UnknownChannel,
    UnknownDevice,
    UnknownVariable,
)
from hadaemon.web.http import (
    ApiError,
    ApiRequest,
    closing_answer,
    parse_json_body,
    write_error,
    write_json,
)
from hadaemon.web.jsonvalues import BadValue
from hadaemon.web.routes import Call, RouteTable

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin

STATIC = pathlib.Path(__file__).parent / "static"


_ERRORS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int, str], ...] = (
    (BadValue, 400, "bad_value"),
    (UnknownDevice, 404, "unknown_device"),
    ((UnknownChannel, UnknownVariable, SystemVariableNotFound), 404, "unknown_variable"),
    (ReadOnly, 403, "read_only"),
    (InvalidValue, 422, "invalid_value"),
    (ConfirmationTimeout, 504, "not_confirmed"),
    (RegistryError, 400, "registry_error"),
    (QueueFull, 503, "busy"),
    (BusError, 502, "bus_error"),
)
"""Exceptions handlers let through that are the client's (or a device's) business, in
the order they are tried (a subclass before its base)."""


def api_error_of(exc: BaseException) -> ApiError | None:
    """The answer for an exception a handler let through (None: unexpected)."""
    if isinstance(exc, ApiError):
        return exc
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if type(exc).__name__ == "AuthError" and isinstance(status, int) and isinstance(code, str):
        retry = getattr(exc, "retry_after", None)
        headers = {b"Retry-After": str(max(1, round(retry))).encode()} if retry else {}
        if status == 401:
            headers[b"WWW-Authenticate"] = b'Bearer realm="hadaemon"'
        details = dict(getattr(exc, "details", None) or {})
        if retry:
            details["retry_after"] = retry
        return ApiError(status, code, str(getattr(exc, "message", exc)), headers=headers,
                        details=details)
    for kind, status, code in _ERRORS:
        if isinstance(exc, kind):
            return ApiError(status, code, str(exc))
    return None


class ApiResource(resource.Resource):
    """Every route of the table (``/api/...`` and ``/metrics``), answered in JSON."""

    isLeaf = True

    def __init__(self, web: WebPlugin, routes: RouteTable) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.web = web
        self.routes = routes

    def render(self, request: Request) -> Any:
        request.notifyFinish().addErrback(_disconnected, request)
        outcome = as_deferred(self._handle(request), name="web request")
        outcome.addErrback(self._unexpected, request)
        return server.NOT_DONE_YET

    async def _handle(self, request: Request) -> None:
        web = self.web
        try:
            split = urlsplit(request.uri.decode("latin-1"))
            method = request.method.decode("latin-1")
            route, raw = self.routes.resolve(method, split.path)
            principal = None
            if route.auth != "public" and not (route.raw and web.settings.metrics_public):
                principal = web.auth.require(request, state_changing=route.auth == "write")
            params = route.convert_params(raw)
            args = parse_qs(split.query, keep_blank_values=True)
            query = route.convert_query(
                {k.encode(): [v.encode() for v in vs] for k, vs in args.items()})
            body: dict[str, Any] = {}
            if route.body is not None:
                body = route.check_body(parse_json_body(request))
            result = route.handler(web, Call(request, params, query, body, principal))
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            error = api_error_of(exc)
            if error is None:
                raise
            write_error(request, error)
            return
        if route.stream:
            return
        if route.raw:
            _write_raw(request, route.status, result)
        else:
            write_json(request, route.status, result)

    def _unexpected(self, failure: Failure, request: Request) -> None:
        self.web.log.failure("{method} {uri} failed", failure=failure,
                             method=request.method.decode("latin-1"),
                             uri=request.uri.decode("latin-1"))
        if not request.startedWriting:
            write_json(request, 500, {"error": "internal",
                                      "message": "an unexpected error; it is logged"})
        elif not request.finished and not getattr(request, "_disconnected", False):
            request.finish()


def _disconnected(failure: Failure, request: Request) -> None:
    request._disconnected = True


def _write_raw(request: Request, status: int, body: Any) -> None:
    if getattr(request, "_disconnected", False) or request.finished:
        return
    data = body if isinstance(body, bytes) else str(body).encode()
    request.setResponseCode(status)
    request.setHeader(b"Content-Length", str(len(data)).encode())
    if request.method != b"HEAD":
        request.write(data)
    request.finish()


class JsonNotFound(resource.Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        write_json(request, 404, {"error": "not_found", "message": "no such file"})
        return server.NOT_DONE_YET  # type: ignore[return-value]


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
"""The console's types, fixed here: the system's mime.types (or Python's table, which
says ``application/javascript`` before 3.12) would make them vary by machine, and a
module script needs a JavaScript type under ``nosniff``. Anything else is
``application/octet-stream``."""


class StaticFiles(static.File):
    """The console's files from inside the package: no directory listings, no scripts."""

    contentTypes = CONTENT_TYPES
    contentEncodings: dict[str, str] = {}
    childNotFound = JsonNotFound()  # type: ignore[no-untyped-call,assignment]
    forbidden = JsonNotFound()  # type: ignore[no-untyped-call,assignment]

    def __init__(self, path: str | pathlib.Path = STATIC) -> None:
        super().__init__(str(path), defaultType="application/octet-stream")
        self.indexNames = ["index.html"]
        self.processors = {}

    def render(self, request: Request) -> Any:
        # (twisted.web would answer other methods with an HTML page)
        if request.method not in (b"GET", b"HEAD"):
            write_json(request, 405, {"error": "method_not_allowed", "message": f"static "
                                      f"files are read with GET, not "
                                      f"{request.method.decode('latin-1')}"},
                       {b"Allow": b"GET, HEAD"})
            return server.NOT_DONE_YET
        # Kept by the browser but checked at every use (Last-Modified: a 304 when
        # unchanged): a fresh tab then reads the files from its cache, compiled scripts
        # included, and still never runs an old console after an upgrade. (API answers
        # stay no-store: they hold the home's data.)
        request.setHeader(b"Cache-Control", b"no-cache")
        return super().render(request)  # type: ignore[no-untyped-call]

    def render_GET(self, request: Request) -> Any:
        request.requestHeaders.removeHeader(b"range")  # small files: always whole
        return super().render_GET(request)  # type: ignore[no-untyped-call]

    def getChild(self, path: bytes, request: Request) -> Any:
        if b"\x00" in path:  # (os.stat raises on a NUL: a 500 otherwise)
            return self.childNotFound
        return super().getChild(path, request)  # type: ignore[no-untyped-call]

    def makeProducer(self, request: Request, fileForReading: Any) -> Any:
        # twisted.web's producers are pulled by the global cooperator, i.e. the global
        # reactor; the console's files are small: written at once. (The headers are set
        # here, as twisted.web's own makeProducer does: without them every file went out
        # as twisted.web's default, text/html, which browsers refuse for scripts and
        # style sheets under nosniff.)
        self._setContentHeaders(request)  # type: ignore[no-untyped-call]
        return _WholeFile(request, fileForReading)

    def directoryListing(self) -> resource.Resource:
        return JsonNotFound()  # type: ignore[no-untyped-call]

    def createSimilarFile(self, path: str) -> StaticFiles:
        similar = StaticFiles(path)
        similar.children = {}
        return similar


class _WholeFile:
    def __init__(self, request: Request, file: Any) -> None:
        self.request, self.file = request, file

    def start(self) -> None:
        with self.file:
            data = self.file.read()
        if not self.request.finished and not getattr(self.request, "_disconnected", False):
            self.request.write(data)
            self.request.finish()


class ApiSite(server.Site):
    """The site: API requests (size limits, security headers), no twisted.web noise."""

    requestFactory = ApiRequest
    displayTracebacks = False

    def __init__(self, root: resource.Resource, *, reactor: Any, max_body: int, tls: bool,
                 log: Any, max_connections: int = 256, idle_timeout: float = 60.0) -> None:
        # (the reactor given: twisted.web would import the global one; no form parsing:
        # the API takes JSON only; idle_timeout: a connection that sends nothing for that
        # long, before or between requests, is closed; a request being answered, an
        # event stream included, is not idle)
        super().__init__(root, reactor=reactor,  # type: ignore[no-untyped-call]
                         parsePOSTFormSubmission=False, timeout=idle_timeout)
        self.max_body = max_body
        self.max_connections = max_connections
        self.connections = 0
        self.tls = tls
        self._log = log
        self.noisy = False

    def buildProtocol(self, addr: Any) -> Any:
        """A channel, or past ``max_connections`` open ones a 503 and the door closed:
        idle or event-stream clients cannot take all of the daemon's file descriptors
        (twisted.web has no cap of its own)."""
        if self.connections >= self.max_connections:
            return _Busy(self.max_connections)
        channel = super().buildProtocol(addr)  # type: ignore[no-untyped-call]
        if channel is not None:
            self.connections += 1
            lost = channel.connectionLost

            def connection_lost(reason: Any) -> None:
                self.connections -= 1
                lost(reason)

            channel.connectionLost = connection_lost
        return channel

    def log(self, request: Any) -> None:  # the access log: not by default
        return None


class _Busy(protocol.Protocol):
    """Answers 503 at once and hangs up (the request is never read)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(closing_answer(
            b"503 Service Unavailable", "busy", f"the server has its {self.limit} "
            "connections open ([web].max_connections); try again later",
            (b"Retry-After: 1",)))
        self.transport.loseConnection()


__all__ = ["CONTENT_TYPES", "ApiResource", "ApiSite", "StaticFiles", "api_error_of"]


