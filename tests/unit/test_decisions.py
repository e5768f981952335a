"""A decision's record carries the event it is about, or, when that is more than Kafka takes,
everything but the event's data, and says so."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas.decisions import Decision, DecisionRow
from schemas.events import Event

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def encoded(event: Event, *, omit_data: bool) -> Decision:
    _, value, headers = event.to_kafka()
    row = DecisionRow(definition_id="team-a.restart", version=3, team="team-a", outcome="started", workflow_id="w")
    payload = Decision.encode(
        event,
        value,
        headers,
        topic="orders",
        partition=1,
        offset=42,
        accepted_at=NOW,
        consumed_at=NOW,
        decided_at=NOW,
        teams=["team-a"],
        snapshot="s1",
        matched=[row],
        replay=False,
        omit_data=omit_data,
    )
    return Decision.model_validate_json(payload)


@pytest.fixture
def event() -> Event:
    return Event(id="e-1", source="/shop", type="order", dedupekey="d-1", subject="o-7", data={"pad": "x" * 5000})


def test_a_decision_carries_the_event_it_is_about(event: Event) -> None:
    decision = encoded(event, omit_data=False)
    assert decision.data_omitted is None
    assert decision.event().model_dump(exclude={"time"}) == event.model_dump(exclude={"time"})


def test_a_decision_without_the_data_keeps_the_attributes_and_the_size_it_left_out(event: Event) -> None:
    decision = encoded(event, omit_data=True)
    assert decision.data_omitted == len(orjson.dumps(event.data))
    assert decision.data == {}
    decoded = decision.event()
    assert (decoded.id, decoded.source, decoded.subject, decoded.data) == ("e-1", "/shop", "o-7", {})
    assert [row.outcome for row in decision.matched] == ["started"]
