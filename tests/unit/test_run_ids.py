"""Workflow ids: each kind of run (event, schedule tick, manual start, Idempotency-Key start)
has an id space of its own, and an event's run is in its source's part of the event space."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from hookline.definitions import StoredDefinition
from hookline.dlq import REPLAY_ORIGIN
from hookline.matching import explain
from hookline.runs import keyed_run_id, manual_run_id
from schemas.events import Event
from schemas.ticks import tick_event
from schemas.workflow import parse_definition
from triggers.external import event_from_record

DOC = {
    "name": "Nightly",
    "trigger": [
        {"type": "schedule", "cron": "0 2 * * *"},
        {"type": "webhook", "source": "ce"},
        {"type": "webhook", "source": "other"},
    ],
}
DEFINITION = parse_definition(DOC)
STORED = StoredDefinition(id=DEFINITION.id, version=1, digest="", document=DOC, definition=DEFINITION)
TICK = tick_event("nightly", 0, datetime(2026, 11, 24, 2, tzinfo=UTC))


def sent(source: str, dedupekey: str, resolves: str | None = None) -> Event:
    """An event whose dedupe key (and `resolves`) a sender chose."""
    return Event(id="x", source="/s", type="t", dedupekey=dedupekey, hooklinesource=source, resolves=resolves)


def run_id(event: Event) -> str:
    [row] = explain([STORED], event)
    assert row.workflow_id is not None, row.reason
    return row.workflow_id


def test_a_sender_cannot_choose_the_id_of_a_schedule_tick() -> None:
    assert run_id(sent("ce", TICK.dedupekey)) != run_id(TICK)


@pytest.mark.parametrize(
    "chosen",
    ["manual-0123", "manual:0123", "key-0123", "key:0123", "schedule:0-20261124T020000Z", "event:other/k", "x/y:z"],
)
def test_a_sender_chosen_key_stays_in_the_event_space_of_its_source(chosen: str) -> None:
    workflow_id = run_id(sent("ce", chosen))
    assert workflow_id.startswith("nightly:event:ce/")
    assert workflow_id not in {run_id(TICK), keyed_run_id("nightly", "default", chosen), run_id(sent("other", chosen))}


def test_manual_and_keyed_starts_have_spaces_of_their_own() -> None:
    assert manual_run_id("nightly").startswith("nightly:manual:")
    assert keyed_run_id("nightly", "team-a", "k").startswith("nightly:key:")
    assert keyed_run_id("nightly", "team-a", "k") != keyed_run_id("nightly", "team-b", "k")


def test_the_same_key_from_two_sources_is_two_runs() -> None:
    assert run_id(sent("ce", "k")) != run_id(sent("other", "k"))


def test_resolves_reaches_only_runs_of_the_same_source() -> None:
    firing = run_id(sent("other", "alert-1"))
    assert run_id(sent("other", "r-1", resolves="alert-1")) == firing  # default on_resolved: signal
    assert run_id(sent("ce", "r-2", resolves="alert-1")) != firing


def plain(offset: int, headers: list[tuple[str, bytes]]) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord("orders", 0, offset, 0, 0, b"k", b'{"kind": "order"}', None, 0, 0, headers)


def test_a_replayed_plain_record_keeps_its_dedupe_key() -> None:
    first = event_from_record(plain(7, []))
    replayed = event_from_record(plain(19, [(REPLAY_ORIGIN, b"orders/0/7")]))
    assert replayed.dedupekey == first.dedupekey == "kafka-orders-0-7"


def test_a_replay_origin_naming_another_topic_is_ignored() -> None:
    assert event_from_record(plain(19, [(REPLAY_ORIGIN, b"payments/0/7")])).dedupekey == "kafka-orders-0-19"
