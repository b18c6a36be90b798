"""Who may enter (login, session, API tokens), and the OpenAPI document that says how."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hadaemon.web.api.table import routes
from hadaemon.web.http import not_found
from hadaemon.web.jsonvalues import to_json
from hadaemon.web.openapi import document
from hadaemon.web.routes import Call, Field

if TYPE_CHECKING:
    from hadaemon.web.plugin import WebPlugin


@routes.get("/api/openapi.json", "This document (OpenAPI 3)", auth="public", tag="api")
def openapi(web: WebPlugin, call: Call) -> Any:
    return document(routes.routes)


# -- who may enter -------------------------------------------------------------------------


@routes.post("/api/login", "Log in with the admin password: a session cookie and the CSRF "
             "token state-changing requests send as X-CSRF-Token", auth="public", tag="auth",
             body=[Field("password", "string", required=True)], errors=(401, 429))
async def login(web: WebPlugin, call: Call) -> Any:
    address = call.request.getClientAddress()
    result = await web.auth.login(call.body["password"],
                                  client=str(getattr(address, "host", "?")))
    call.request.setHeader(b"Set-Cookie", result.set_cookie)
    principal = result.principal
    return {"kind": principal.kind, "name": principal.name,
            "csrf_token": principal.csrf_token}


@routes.post("/api/logout", "End the session", tag="auth")
def logout(web: WebPlugin, call: Call) -> Any:
    call.request.setHeader(b"Set-Cookie", web.auth.logout(call.request))
    return {"ok": True}


@routes.get("/api/session", "Who is asking: session or token, and the CSRF token; without "
             "credentials a 401 login_required whose password_set says whether an admin "
             "password is set yet (false: the console shows how to set one)", tag="auth")
def session(web: WebPlugin, call: Call) -> Any:
    principal = call.principal
    return {"kind": principal.kind, "name": principal.name,
            "csrf_token": principal.csrf_token}


@routes.get("/api/tokens", "The API tokens (never their secrets)", tag="auth")
def tokens(web: WebPlugin, call: Call) -> Any:
    return {"tokens": to_json(web.auth.tokens())}


@routes.post("/api/tokens", "Create an API token; its secret is shown only in this answer",
             tag="auth", status=201,
             body=[Field("name", "string", required=True, min_length=1)])
def create_token(web: WebPlugin, call: Call) -> Any:
    token_id, secret = web.auth.create_token(call.body["name"])
    return {"id": token_id, "name": call.body["name"], "secret": secret}


@routes.delete("/api/tokens/{token_id}", "Revoke an API token", tag="auth",
               params={"token_id": str})
def revoke_token(web: WebPlugin, call: Call) -> Any:
    if not web.auth.revoke_token(call.params["token_id"]):
        raise not_found("token", f"no token {call.params['token_id']!r}")
    return {"ok": True}

