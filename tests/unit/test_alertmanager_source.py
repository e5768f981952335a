"""Parsing Alertmanager v4 notifications into events (pure logic, no Kafka)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.errors import BadRequest, InvalidPayload, UnsupportedMediaType
from gateway.sources.alertmanager import AlertmanagerSource, alert_dedupe_key

SOURCE = AlertmanagerSource("alertmanager")
JSON = {"Content-Type": "application/json"}


def parse(doc: Any, content_type: str = "application/json") -> list[Any]:
    return SOURCE.parse(json.dumps(doc).encode(), {"Content-Type": content_type})


def test_each_alert_becomes_its_own_event(notification: Callable[..., dict[str, Any]]) -> None:
    body = notification(alerts=3)
    events = parse(body)
    assert [e.partitionkey for e in events] == [a["fingerprint"] for a in body["alerts"]]
    assert {e.type for e in events} == {"io.prometheus.alertmanager.alert.firing"}
    assert len({e.id for e in events}) == 3


def test_dedupe_key_ignores_ends_at_but_not_status(notification: Callable[..., dict[str, Any]]) -> None:
    body = notification(alerts=1)
    first = parse(body)[0]
    body["alerts"][0]["endsAt"] = "2026-11-24T11:00:00Z"
    resent = parse(body)[0]
    body["alerts"][0]["status"] = "resolved"
    resolved = parse(body)[0]
    assert first.dedupekey == resent.dedupekey
    assert resolved.dedupekey != first.dedupekey
    assert resolved.type.endswith(".resolved")


def test_a_resolved_alert_names_the_firing_event_it_resolves(notification: Callable[..., dict[str, Any]]) -> None:
    body = notification(alerts=1)
    firing = parse(body)[0]
    body["alerts"][0]["status"] = "resolved"
    body["alerts"][0]["endsAt"] = "2026-11-24T11:00:00Z"
    resolved = parse(body)[0]
    assert firing.resolves is None
    assert resolved.resolves == firing.dedupekey


@pytest.mark.parametrize("field", ["receiver", "fingerprint", "startsAt", "status"])
def test_dedupe_key_changes_with_each_of_its_parts(field: str) -> None:
    parts = {"receiver": "r", "fingerprint": "f", "startsAt": "s", "status": "firing"}
    changed = {**parts, field: parts[field] + "x"}
    assert alert_dedupe_key(*parts.values()) != alert_dedupe_key(*changed.values())


def test_unknown_fields_from_newer_alertmanager_are_accepted(notification: Callable[..., dict[str, Any]]) -> None:
    body = notification(alerts=1)
    body["notification_reason"] = "new_alerts"
    body["routeLabels"] = {"team": "sre"}
    assert len(parse(body)) == 1


def test_truncated_alerts_are_recorded_on_the_events(notification: Callable[..., dict[str, Any]]) -> None:
    body = notification(alerts=1)
    body["truncatedAlerts"] = 7
    assert parse(body)[0].data["truncatedAlerts"] == 7


@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.pop("receiver"), "receiver"),
        (lambda b: b["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda b: b["alerts"][0]["labels"].update(severity=3), "alerts[0].labels.severity"),
        (lambda b: b.update(alerts=[]), "alerts"),
    ],
    ids=["version", "receiver", "fingerprint", "status", "label-type", "empty-alerts"],
)
def test_schema_violations_name_the_failing_field(
    notification: Callable[..., dict[str, Any]], mutate: Callable[[dict[str, Any]], Any], location: str
) -> None:
    body = notification(alerts=1)
    mutate(body)
    with pytest.raises(InvalidPayload) as info:
        parse(body)
    assert location in [e.location for e in info.value.errors]
    assert location in str(info.value)


def test_body_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(InvalidPayload):
        parse([1, 2, 3])


def test_malformed_json_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        SOURCE.parse(b'{"version": ', JSON)


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-www-form-urlencoded"])
def test_other_content_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        SOURCE.parse(b"{}", {"Content-Type": content_type})


def test_json_with_charset_parameter_is_accepted(notification: Callable[..., dict[str, Any]]) -> None:
    assert len(parse(notification(alerts=1), "application/json; charset=utf-8")) == 1


def test_the_request_headers_are_read_case_insensitively(notification: Callable[..., dict[str, Any]]) -> None:
    headers = CIMultiDict({"content-type": "application/json"})
    assert len(SOURCE.parse(json.dumps(notification(alerts=1)).encode(), headers)) == 1
