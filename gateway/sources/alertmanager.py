"""Alertmanager webhook notifications (payload version 4): one event per alert."""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.errors import InvalidPayload
from gateway.sources.auth import Guard
from gateway.sources.base import Headers, as_headers, decode_json
from gateway.sources.ratelimit import TokenBucket
from schemas.events import Event, new_event_id
from schemas.validation import named_validator

__all__ = ["AlertmanagerSource", "alert_dedupe_key"]

EVENT_TYPE = "io.prometheus.alertmanager.alert."
#: `Event.checked`, looked up once: an attribute of a pydantic model class is found through its
#: metaclass's `__getattr__` hook, some 900 instructions a lookup on the ingest path.
_checked_event = Event.checked


def alert_dedupe_key(receiver: str, fingerprint: str, starts_at: str, status: str) -> str:
    """Same alert, same state change → same key. Not `endsAt`: Prometheus moves it on every resend."""
    raw = "\x1f".join((receiver, fingerprint, starts_at, status)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class AlertmanagerSource:
    kind = "alertmanager"
    retries_only_5xx = True
    limiter: TokenBucket | None = None  # Alertmanager drops what is answered 429: never rate-limited

    def __init__(self, name: str, *, guard: Guard | None = None) -> None:
        self.name = name
        self.guard = guard or Guard()
        self._source_uri = f"/hooks/{name}"
        # Built here, at start-up: before the start-up heap is frozen, and not looked up per request.
        self._schema = named_validator("alertmanager")

    def parse(self, body: bytes, headers: Headers) -> list[Event]:
        notification = decode_json(body, as_headers(headers).get("Content-Type", ""))
        errors = self._schema.errors(notification)
        if errors:
            raise InvalidPayload(f"not an Alertmanager v4 notification: {errors[0]}", errors=errors)
        return [self._event(notification, alert) for alert in notification["alerts"]]

    def _event(self, notification: dict[str, Any], alert: dict[str, Any]) -> Event:
        status = alert["status"]
        receiver = notification["receiver"]
        # Every value below is a string the schema checked, or built here: no second validation.
        return _checked_event(
            id=new_event_id(),
            source=self._source_uri,
            type=EVENT_TYPE + status,
            subject=alert["labels"].get("alertname"),
            dedupekey=alert_dedupe_key(receiver, alert["fingerprint"], alert["startsAt"], status),
            partitionkey=alert["fingerprint"],
            hooklinesource=self.name,
            resolves=(
                alert_dedupe_key(receiver, alert["fingerprint"], alert["startsAt"], "firing")
                if status == "resolved"
                else None
            ),
            data={
                "receiver": receiver,
                "status": status,
                "alert": alert,
                "groupKey": notification.get("groupKey"),
                "groupLabels": notification.get("groupLabels", {}),
                "commonLabels": notification.get("commonLabels", {}),
                "commonAnnotations": notification.get("commonAnnotations", {}),
                "externalURL": notification.get("externalURL"),
                "truncatedAlerts": notification.get("truncatedAlerts", 0),
            },
        )
