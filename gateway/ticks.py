"""`POST /ticks/{definition}[/{trigger index}]`: an external scheduler ticks a schedule trigger.

A definition's id names its team (`schemas.workflow.split_id`), so a credential bound to a team
(`gateway.ticks.teams`) is checked against the id alone: it ticks its own team's schedules, and
another team's are refused as any wrong credential is.

The event is the one the triggers' own ticker makes (`schemas.ticks.tick_event`), so both give a
slot the same dedupe key and any number of tickers start one run per slot. The body is optional:
`{"slot": "<RFC 3339 time with offset>"}`; without it the slot is now, truncated to the second.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from gateway.errors import BadRequest, NotFound, TooManyRequests
from gateway.ingress import Handler, accepted, check_size, counted, read_body
from gateway.metrics import GatewayMetrics
from gateway.publisher import EventPublisher
from gateway.sources.auth import Guard
from gateway.sources.base import decode_json
from gateway.sources.config import AuthConfig, SecretRef, TicksConfig
from gateway.sources.ratelimit import TokenBucket
from schemas.ticks import tick_event
from schemas.workflow import split_id

__all__ = ["TICKS_SOURCE", "add_tick_routes"]

TICKS_SOURCE = "ticks"  # the metrics' source label
_DEFINITION_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}~)?[a-z0-9][a-z0-9._-]{0,127}$")


def _joined(*configs: AuthConfig | None) -> AuthConfig:
    given = [c for c in configs if c is not None]
    return AuthConfig(bearer=[r for c in given for r in c.bearer], basic=[b for c in given for b in c.basic])


def team_guards(config: TicksConfig) -> Callable[[str], Guard]:
    """The guard of a team's schedules: `auth` alone without `teams` (open without either, as
    before); with `teams`, the team's credentials and `auth`'s."""
    everyone = Guard(config.auth)
    if not config.teams:
        return lambda team: everyone
    # A team without credentials of its own takes `auth`'s only; without those, none opens it.
    unguessable = AuthConfig(bearer=[SecretRef(value=secrets.token_urlsafe(32))])
    fallback = everyone if config.auth is not None else Guard(unguessable)
    guards = {team: Guard(_joined(config.auth, auth)) for team, auth in config.teams.items()}
    return lambda team: guards.get(team, fallback)


def slot_of(body: bytes, content_type: str, now: datetime) -> datetime:
    """The slot a tick request names, or `now` truncated to the second."""
    if not body.strip():
        return now.replace(microsecond=0)
    doc = decode_json(body, content_type)
    if not isinstance(doc, dict) or set(doc) - {"slot"}:
        raise BadRequest('the body is optional; if sent, it is {"slot": "<RFC 3339 time>"} and nothing else')
    if "slot" not in doc:
        return now.replace(microsecond=0)
    text = doc["slot"]
    try:
        slot = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        slot = None
    problem = f"slot must be an RFC 3339 time with an offset, e.g. 2026-11-24T02:00:00Z; got {text!r:.60}"
    if slot is None or slot.tzinfo is None:
        raise BadRequest(problem)
    try:
        return slot.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # the offset moves it before year 1 or after year 9999
        raise BadRequest(f"{problem} (outside the years 1-9999 in UTC)") from None


def tick_handler(config: TicksConfig, publisher: EventPublisher, max_body_bytes: int, read_timeout_s: float) -> Handler:
    guard_of = team_guards(config)
    limit = config.rate_limit
    limiter = TokenBucket(limit.per_second, limit.burst) if limit is not None else None

    async def tick(request: web.Request) -> web.Response:
        if not config.enabled:
            raise NotFound("/ticks is not enabled on this gateway: set gateway.ticks.enabled (docs/ingress.md)")
        definition = request.match_info["definition"]
        if not _DEFINITION_ID.match(definition):
            raise BadRequest(f"{definition[:130]!r} is not a workflow definition id")
        index = int(request.match_info.get("index", "0"))
        check_size(request, max_body_bytes)
        guard_of(split_id(definition)[0]).check_headers(request.headers)
        if limiter is not None and (wait_s := limiter.take()):
            raise TooManyRequests("/ticks is over its rate limit", retry_after_s=wait_s)
        body = await read_body(request, read_timeout_s)
        slot = slot_of(body, request.headers.get("Content-Type", ""), datetime.now(UTC))
        event = tick_event(definition, index, slot)
        await publisher.publish([event], source=TICKS_SOURCE)
        return accepted([event.id], schedule=event.subject, slot=slot.isoformat(), dedupekey=event.dedupekey)

    return tick


def add_tick_routes(
    app: web.Application,
    config: TicksConfig,
    publisher: EventPublisher,
    metrics: GatewayMetrics,
    *,
    max_body_bytes: int,
    read_timeout_s: float,
) -> None:
    handler = counted(tick_handler(config, publisher, max_body_bytes, read_timeout_s), metrics, TICKS_SOURCE)
    app.router.add_post("/ticks/{definition}", handler)
    app.router.add_post(r"/ticks/{definition}/{index:\d{1,4}}", handler)
