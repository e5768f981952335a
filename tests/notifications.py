"""`notification`: the tests' one way to make an Alertmanager notification (the real-shaped v4
document of tests/data, its alerts given fresh fingerprints); `resolved`: the notification
Alertmanager sends when (some of) its alerts resolve."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


def notification(alerts: int, instance: str, status: str = "firing") -> dict[str, Any]:
    """A notification of `alerts` alerts, all `status`, with fingerprints no other test has and
    instances `<instance>-<n>:8080`."""
    doc: dict[str, Any] = json.loads((DATA / "alertmanager-firing.json").read_text())
    template = doc["alerts"][0]
    doc["alerts"] = []
    for i in range(alerts):
        alert = json.loads(json.dumps(template))
        alert["fingerprint"] = uuid.uuid4().hex[:16]
        alert["labels"]["instance"] = f"{instance}-{i}:8080"
        alert["status"] = status
        doc["alerts"].append(alert)
    doc["status"] = status
    return doc


def resolved(body: dict[str, Any], *fingerprints: str, ends_at: str = "2026-11-24T10:20:00Z") -> dict[str, Any]:
    """The resolved notification of `body`'s alerts with these fingerprints (all of them if none
    is named): a copy, `body` unchanged."""
    doc: dict[str, Any] = json.loads(json.dumps(body))
    doc["status"] = "resolved"
    doc["alerts"] = [a for a in doc["alerts"] if not fingerprints or a["fingerprint"] in fingerprints]
    for alert in doc["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", ends_at
    return doc
