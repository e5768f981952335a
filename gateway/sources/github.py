"""GitHub webhooks: signed with `X-Hub-Signature-256`, the delivery id as dedupe key, the event
name as type suffix (`com.github.push`), the repository as subject. GitHub sends the payload as
JSON, or form-encoded as `payload=<JSON>` (its default content type); both are accepted."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.sources.auth import GithubSignature, Guard
from gateway.sources.base import Headers, decode_json, media_type
from gateway.sources.config import GithubConfig
from gateway.sources.generic import JsonSource
from gateway.sources.ratelimit import TokenBucket

__all__ = ["GithubSource"]

FORM = "application/x-www-form-urlencoded"


class GithubSource(JsonSource):
    def __init__(self, name: str, config: GithubConfig, *, limiter: TokenBucket | None = None) -> None:
        signature = GithubSignature([ref.secret.get_secret_value() for ref in config.secrets])
        super().__init__(name, config, guard=Guard(config.auth, signature), limiter=limiter)

    def document(self, body: bytes, headers: Headers) -> Any:
        media = media_type(headers)
        if media != FORM:
            if media != "application/json":
                raise UnsupportedMediaType(f"Content-Type must be application/json or {FORM}, got {media or 'none'!r}")
            return decode_json(body, media)
        try:
            payload = parse_qs(body.decode(), strict_parsing=True).get("payload")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"the form body cannot be decoded: {exc}") from exc
        if not payload or len(payload) != 1:
            raise BadRequest("a form-encoded GitHub delivery carries exactly one `payload` field")
        return decode_json(payload[0].encode(), "application/json")
