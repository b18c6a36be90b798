"""The OpenAPI 3 document, made from the route table so that it cannot drift from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hadaemon._version import __version__
from hadaemon.web.routes import Field, Route

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS_TEXT = {400: "Bad input (named in the error)", 401: "No or wrong credentials",
                403: "Not allowed (e.g. a missing CSRF token)", 404: "Unknown id",
                405: "Wrong method", 409: "Conflict", 413: "Body too large",
                415: "Body is not JSON", 429: "Too many attempts",
                502: "The device or bridge refused", 503: "Not available (or busy)",
                504: "Timed out"}


def _schema(spec: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {} if spec.type == "any" else {"type": spec.type}
    if spec.minimum is not None:
        schema["minimum"] = spec.minimum
    if spec.maximum is not None:
        schema["maximum"] = spec.maximum
    if spec.min_length is not None:
        schema["minLength"] = spec.min_length
    if spec.description:
        schema["description"] = spec.description
    return schema


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__.strip("_"),
    }
    if route.tag:
        operation["tags"] = [route.tag]
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer" if kind is int else "string"}}
        for name, kind in route.params.items()
    ]
    parameters += [
        {"name": spec.name, "in": "query", "required": spec.required, "schema": _schema(spec),
         **({"description": spec.description} if spec.description else {})}
        for spec in route.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {spec.name: _schema(spec) for spec in route.body},
                "required": [spec.name for spec in route.body if spec.required],
                "additionalProperties": False,
            }}},
        }
    if route.stream:
        content: dict[str, Any] = {"text/event-stream": {"schema": {"type": "string"}}}
    elif route.raw:
        content = {"text/plain": {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": {}}}
    responses: dict[str, Any] = {str(route.status): {"description": "OK", "content": content}}
    codes = set(route.errors) | {400}
    if route.auth != "public":
        codes |= {401}
    if route.auth == "write":
        codes |= {403}
    if route.body is not None:
        codes |= {413, 415}
    if route.params:
        codes |= {404}
    for code in sorted(codes):
        responses[str(code)] = {
            "description": _STATUS_TEXT.get(code, "Error"),
            "content": {"application/json": {"schema": _ERROR}},
        }
    operation["responses"] = responses
    if route.auth == "public":
        operation["security"] = []
    elif route.auth == "write":
        operation["description"] = ("State-changing: with a session cookie, send the "
                                    "X-CSRF-Token header (from POST /api/login).")
    return operation


def document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hadaemon HTTP API",
            "version": __version__,
            "description": "The daemon's window: devices, system variables, nodes, flows, "
                           "services, the zigbee bridge, the log, history and live events. "
                           "See docs/http-api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": {
                "type": "object", "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"},
                    "password_set": {"type": "boolean", "description": (
                        "In a 401 login_required only: whether an admin password is set "
                        "(false: log in is impossible until one is)")},
                    "retry_after": {"type": "number", "description": (
                        "In a 429: seconds to wait (as the Retry-After header)")},
                },
            }},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token (`hadaemon token create NAME`)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "hadaemon_session",
                            "description": "From POST /api/login."},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
