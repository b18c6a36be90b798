"""Route declarations: one table says each endpoint's method, path, parameters, body,
auth and documentation; the dispatcher and the OpenAPI document both read it.

A path is a template, ``/api/devices/{peer_id}/{channel}/{name}``; a parameter's type
(``int`` or ``str``) converts it, and a wrong one is a 400 naming it. A body is declared
as its fields (JSON types); unknown fields and wrong types are 400s naming them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from hadaemon.web.http import ApiError, bad_request

Auth = Literal["public", "read", "write"]
"""``public``: anyone; ``read``: a session or token; ``write``: that, and for a session
the CSRF token (state-changing)."""

JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@dataclass(frozen=True)
class Field:
    """One field of a JSON body or one query parameter."""

    name: str
    type: str  # a JSON type name, or "any"
    description: str = ""
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None  # documented; the handler says what is wrong

    def check(self, value: Any, where: str) -> Any:
        if self.type == "any":
            return value
        allowed = JSON_TYPES[self.type]
        if (isinstance(value, bool) and self.type != "boolean") or not isinstance(value, allowed):
            raise bad_request("wrong_type", f"{where} {self.name!r}: expected {self.type}, "
                              f"got {_json_type(value)}")
        number: Any = value
        if self.minimum is not None and number < self.minimum:
            raise bad_request("out_of_range", f"{where} {self.name!r}: {value!r} is below "
                              f"the minimum {self.minimum:g}")
        if self.maximum is not None and number > self.maximum:
            raise bad_request("out_of_range", f"{where} {self.name!r}: {value!r} is above "
                              f"the maximum {self.maximum:g}")
        return value


_INTEGER = re.compile(r"-?[0-9]{1,18}")


def parse_int(text: str) -> int:
    """An integer of a path or query: ASCII digits only (``int`` also takes "1_0", " 1",
    other scripts' digits, and raises past 4,300 digits), at most 18 of them."""
    if not _INTEGER.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for name, kinds in JSON_TYPES.items():
        if name != "number" and isinstance(value, kinds):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


@dataclass
class Call:
    """What a handler gets: converted path parameters, query, body, who asks."""

    request: Any
    params: dict[str, Any]
    query: dict[str, Any]
    body: dict[str, Any]
    principal: Any = None


Handler = Callable[[Any, Call], Awaitable[Any] | Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: Auth = "read"
    tag: str = ""
    params: Mapping[str, type] = field(default_factory=dict)
    query: Sequence[Field] = ()
    body: Sequence[Field] | None = None
    status: int = 200
    stream: bool = False  # text/event-stream, not JSON
    raw: bool = False  # the handler answers itself (e.g. /metrics' text format)
    errors: Sequence[int] = ()
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        object.__setattr__(self, "pattern", re.compile(regex))
        names = set(re.findall(r"\{(\w+)\}", self.path))
        if names != set(self.params):
            raise ValueError(f"{self.method} {self.path}: declare the types of {sorted(names)}")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        return None if found is None else found.groupdict()

    def convert_params(self, raw: Mapping[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, text in raw.items():
            value = unquote(text)
            if self.params[name] is int:
                try:
                    params[name] = parse_int(value)
                except ValueError:
                    raise bad_request(
                        "bad_parameter", f"path parameter {name!r}: expected an integer, "
                        f"got {value!r}") from None
            else:
                params[name] = value
        return params

    def convert_query(self, args: Mapping[bytes, list[bytes]]) -> dict[str, Any]:
        declared = {f.name: f for f in self.query}
        out: dict[str, Any] = {}
        for raw_name, values in args.items():
            name = raw_name.decode("utf-8", "replace")
            spec = declared.get(name)
            if spec is None:
                known = ", ".join(declared) or "none"
                raise bad_request("unknown_parameter",
                                  f"unknown query parameter {name!r} (known: {known})")
            text = values[-1].decode("utf-8", "replace")
            out[name] = _query_value(spec, text)
        for spec in self.query:
            if spec.required and spec.name not in out:
                raise bad_request("missing_parameter",
                                  f"query parameter {spec.name!r} is required")
        return out

    def check_body(self, body: Any) -> dict[str, Any]:
        assert self.body is not None
        if not isinstance(body, dict):
            raise bad_request("wrong_type", f"the body must be a JSON object, got "
                              f"{_json_type(body)}")
        declared = {f.name: f for f in self.body}
        unknown = sorted(set(body) - set(declared))
        if unknown:
            raise bad_request("unknown_field", f"unknown field(s) {', '.join(map(repr, unknown))} "
                              f"(known: {', '.join(declared) or 'none'})")
        for spec in self.body:
            if spec.name not in body:
                if spec.required:
                    raise bad_request("missing_field", f"field {spec.name!r} is required")
                continue
            spec.check(body[spec.name], "field")
        return body


def _query_value(spec: Field, text: str) -> Any:
    value: Any = text
    try:
        if spec.type == "integer":
            value = parse_int(text)
        elif spec.type == "number":
            value = float(text)
        elif spec.type == "boolean":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            value = text.lower() in ("true", "1")
    except ValueError:
        raise bad_request("wrong_type", f"query parameter {spec.name!r}: expected "
                          f"{spec.type}, got {text!r}") from None
    return spec.check(value, "query parameter")


class RouteTable:
    """The API's routes, declared with decorators: ``@routes.get("/api/x", "summary")``."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, summary: str,
            **options: Any) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.routes.append(Route(method, path, handler, summary, **options))
            return handler
        return declare

    def get(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.add("GET", path, summary, **options)

    def post(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.add("POST", path, summary, auth=options.pop("auth", "write"), **options)

    def put(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.add("PUT", path, summary, auth=options.pop("auth", "write"), **options)

    def delete(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.add("DELETE", path, summary, auth=options.pop("auth", "write"), **options)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request; ApiError 404 (no such path) or 405 (wrong method)."""
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params
            allowed.append(route.method)
        if allowed:
            raise ApiError(405, "method_not_allowed",
                           f"{method} is not allowed on {path} (allowed: {', '.join(allowed)})",
                           headers={b"Allow": ", ".join(allowed).encode()})
        raise ApiError(404, "not_found", f"no endpoint {path} (see /api/openapi.json)")
