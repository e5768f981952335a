"""Request bodies, query parameters and JSON answers of the REST API."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.errors import BadRequest, Forbidden, Unprocessable, UnsupportedMediaType
from schemas.limits import MAX_JSON_DEPTH, depth_exceeds
from schemas.validation import SchemaError, location

__all__ = [
    "MAX_DEPTH",
    "check_filters",
    "decode_cursor",
    "encode_cursor",
    "etag",
    "expected_version",
    "filter_time",
    "json_response",
    "page_by_id",
    "page_limit",
    "query_int",
    "read_model",
    "read_object",
]

if TYPE_CHECKING:
    from gateway.api.auth import Principal

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Deeper JSON is refused with 400 before any validator recurses into it.
MAX_DEPTH = MAX_JSON_DEPTH


def json_response(
    answer: BaseModel, status: int = 200, *, headers: dict[str, str] | None = None, exclude_unset: bool = False
) -> web.Response:
    """`answer` as JSON; with `exclude_unset`, without the fields its handler left out."""
    body = orjson.dumps(answer.model_dump(mode="json", exclude_unset=exclude_unset))
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


async def read_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object: 415 for another content type, 400 for malformed or non-object
    JSON. With `empty_ok`, an empty body (of any declared type) reads as `{}`."""
    body = await request.read()
    if not body.strip() and empty_ok:
        return {}
    ctype = request.content_type
    if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise UnsupportedMediaType(f'send the body as JSON with `Content-Type: application/json`, not "{ctype}"')
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadRequest(f"the body must be a JSON object, not {_kind(doc)}")
    if depth_exceeds(doc, MAX_DEPTH):
        raise BadRequest(f"the body is nested more than {MAX_DEPTH} levels deep")
    return doc


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def query_int(request: web.Request, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    """An integer query parameter, or None when absent; 400 when it is not one in range."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f'query parameter "{name}" must be an integer, got "{raw[:50]}"') from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise BadRequest(f'query parameter "{name}" must be {bound}, got {value}')
    return value


def filter_time(filters: Mapping[str, str], name: str) -> datetime | None:
    """A time filter (`since`, `until`): ISO 8601, UTC when it names no zone; 400 otherwise."""
    raw = filters.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f'"{name}" must be an ISO 8601 time such as 2026-11-29T10:00:00Z, got "{raw[:50]}"') from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_filters(filters: Mapping[str, str], allowed: Iterable[str], principal: Principal, what: str) -> None:
    """400 for a filter a listing does not know; 403 for `team` naming a team the caller may not see."""
    names = list(allowed)
    unknown = sorted(set(filters) - {*names, "limit", "cursor"})
    if unknown:
        raise BadRequest(f"unknown filter {unknown[0]!r}; filters: {', '.join(names)}")
    team = filters.get("team")
    if team is not None and not principal.sees(team):
        raise Forbidden(f'token "{principal.name}" may not read team "{team}"\'s {what}')


def page_by_id(
    items: Sequence[T], id_of: Callable[[T], str], request: web.Request, scope: str, limit: int
) -> tuple[list[T], str | None]:
    """One page of `items` (already in order) after the `cursor` of the request (the id of the
    last item of the previous page), and the cursor of the next page (None on the last)."""
    start = 0
    if cursor := request.query.get("cursor"):
        after = decode_cursor(cursor, scope).decode()
        start = next((i + 1 for i, item in enumerate(items) if id_of(item) == after), len(items))
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, encode_cursor(id_of(page[-1]).encode(), scope) if more and page else None


def etag(version: int) -> str:
    """The entity tag of a definition version: the number, quoted."""
    return f'"{version}"'


def expected_version(request: web.Request) -> int | Literal["*"] | None:
    """The version a conditional request expects current: `If-Match` with a version number or
    its ETag (`"3"`, `W/"3"`, `3`), `*` for any; `If-None-Match: *` expects none (0); None when
    the request is unconditional. 400 for anything else."""
    if request.headers.get("If-None-Match", "").strip() == "*":
        return 0
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    value = raw.strip()
    if value == "*":
        return "*"
    tag = value.removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 18 or int(tag) < 1:
        raise BadRequest(
            f'If-Match must name one version, as its ETag (e.g. "3") or its number, or be *; got "{raw[:50]}"'
        )
    return int(tag)


def page_limit(request: web.Request, default: int, maximum: int) -> int:
    return query_int(request, "limit", minimum=1, maximum=maximum) or default


def _check(token: bytes, scope: str) -> bytes:
    return hashlib.sha256(scope.encode() + b"\0" + token).digest()[:8]


def encode_cursor(token: bytes, scope: str) -> str:
    """An opaque cursor for a back end's page token, bound to `scope` (the query it pages)."""
    return base64.urlsafe_b64encode(_check(token, scope) + token).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> bytes:
    """The page token in a cursor from `encode_cursor` for the same scope; 400 otherwise, so
    made-up tokens never reach the back end (Temporal answers those with retried errors)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) <= 8 or not hmac.compare_digest(raw[:8], _check(raw[8:], scope)):
        raise BadRequest('query parameter "cursor" is not a cursor this API returned for this listing')
    return raw[8:]


async def read_model(request: web.Request, model: type[M], *, empty_ok: bool = False) -> M:
    """The request's JSON object as `model`; 422 listing where it does not fit (400/415 as
    `read_object` says)."""
    body = await read_object(request, empty_ok=empty_ok)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [SchemaError(location(e["loc"]), e["msg"]) for e in exc.errors()]
        raise Unprocessable("the request body is not valid", errors=errors) from exc
