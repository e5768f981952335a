"""Console sessions: an API token, presented once at sign-in, becomes a signed cookie.

The cookie holds the token's name, an expiry and a random id, signed with a key derived from the
token itself (`TokenTable.session_key`): no server-side session store, every gateway with the
same tokens accepts it, and replacing or removing the token ends its sessions. It is HttpOnly
(no script reads it) and SameSite=Strict (no other site's page sends it).

Every form that changes something carries a CSRF token, derived from the session's id and key;
a POST without the right one is refused (403) even when the cookie comes with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from gateway.api.auth import Principal, TokenTable
from gateway.errors import Forbidden
from gateway.settings import ConsoleOptions

__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "Session", "check_csrf", "end_session", "read_session", "sign_in"]

COOKIE = "hookline_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    expires: int  # unix seconds
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _csrf(key: bytes, sid: str) -> str:
    return _b64(hmac.digest(key, b"csrf\0" + sid.encode(), hashlib.sha256))


def sign_in(
    response: web.StreamResponse,
    request: web.Request,
    principal: Principal,
    tokens: TokenTable,
    options: ConsoleOptions,
) -> None:
    """Set the session cookie of `principal` (who has just presented a valid token) on `response`."""
    found = tokens.session_key(principal.name)
    if found is None:  # cannot happen: the principal came from this table
        raise ValueError(f"no token named {principal.name!r}")
    _, key = found
    expires = int(time.time() + options.session_hours * 3600)
    payload = _b64(json.dumps({"n": principal.name, "e": expires, "s": secrets.token_urlsafe(16)}).encode())
    signature = _b64(hmac.digest(key, payload.encode(), hashlib.sha256))
    response.set_cookie(
        COOKIE,
        f"{payload}.{signature}",
        max_age=int(options.session_hours * 3600),
        path="/ui",
        httponly=True,
        samesite="Strict",
        secure=_secure(request, options),
    )


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/ui")


def read_session(request: web.Request, tokens: TokenTable) -> Session | None:
    """The request's valid session, or None (no cookie, a forged or expired one, a removed token)."""
    raw = request.cookies.get(COOKIE)
    if not raw or raw.count(".") != 1:
        return None
    payload, signature = raw.split(".")
    try:
        claims = json.loads(_unb64(payload))
        name, expires, sid = str(claims["n"]), int(claims["e"]), str(claims["s"])
        presented = _unb64(signature)
    except (ValueError, KeyError, TypeError):
        return None
    found = tokens.session_key(name)
    if found is None:
        return None
    principal, key = found
    if not hmac.compare_digest(hmac.digest(key, payload.encode(), hashlib.sha256), presented):
        return None
    if expires < time.time():
        return None
    return Session(principal, expires, _csrf(key, sid))


def check_csrf(session: Session, presented: str | None) -> None:
    """403 unless `presented` is this session's CSRF token."""
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise Forbidden("the form's CSRF token is missing or not this session's; reload the page and try again")


def _secure(request: web.Request, options: ConsoleOptions) -> bool:
    if options.secure_cookie is not None:
        return options.secure_cookie
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
