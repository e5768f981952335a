"""Schedule triggers: slots, the missed-tick policy, jitter, and tick events (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hookline.definitions import StoredDefinition
from hookline.matching import TriggerIndex
from schemas.ticks import tick_event
from schemas.workflow import parse_definition
from triggers.schedules import Schedule, due_slots, schedules_of

GRACE = timedelta(seconds=60)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 24, hh, mm, ss, tzinfo=UTC)


def schedule(cron: str = "*/5 * * * *", missed: str = "once", **kw: Any) -> Schedule:
    fields: dict[str, Any] = {"timezone": "UTC", "jitter_s": 0.0, "max_missed": 100} | kw
    return Schedule("nightly#0", "nightly", 0, cron, missed=missed, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("missed", "max_missed", "expected"),
    [
        ("skip", 100, [at(10, 15)]),
        ("once", 100, [at(10, 10), at(10, 15)]),
        ("all", 100, [at(10, 5), at(10, 10), at(10, 15)]),
        ("all", 1, [at(10, 10), at(10, 15)]),
    ],
)
def test_missed_slots_follow_the_policy_and_on_time_ones_always_tick(
    missed: str, max_missed: int, expected: list[datetime]
) -> None:
    # Down from 10:00 to 10:16: 10:05 and 10:10 were missed, 10:15 is within the grace period.
    slots, newest = due_slots(schedule(missed=missed, max_missed=max_missed), at(10, 0), at(10, 16), GRACE)
    assert slots == expected
    assert newest == at(10, 15)


def test_nothing_is_due_between_slots() -> None:
    assert due_slots(schedule(), at(10, 5), at(10, 9, 59), GRACE) == ([], at(10, 5))


def test_slots_are_computed_in_the_schedules_time_zone() -> None:
    berlin = schedule("0 9 * * *", timezone="Europe/Berlin")
    assert berlin.slots(at(0, 0), at(23, 0)) == [at(8, 0)]  # 09:00 CET is 08:00 UTC


def test_six_fields_mean_seconds_first() -> None:
    assert schedule("*/20 * * * * *").slots(at(10, 0), at(10, 1)) == [at(10, 0, 20), at(10, 0, 40), at(10, 1)]


def test_jitter_is_the_same_everywhere_and_delays_the_tick() -> None:
    jittered = schedule(jitter_s=30.0)
    offset = jittered.offset(at(10, 5))
    assert offset == schedule(jitter_s=30.0).offset(at(10, 5))
    assert timedelta(0) <= offset < timedelta(seconds=30)
    assert due_slots(jittered, at(10, 0), at(10, 5) + offset - timedelta(milliseconds=1), GRACE)[0] == []
    assert due_slots(jittered, at(10, 0), at(10, 5) + offset, GRACE)[0] == [at(10, 5)]


def test_two_tickers_emit_the_same_dedupe_key_for_a_slot() -> None:
    first, second = tick_event("nightly", 0, at(10, 5)), tick_event("nightly", 0, at(10, 5))
    assert first.id != second.id
    assert first.dedupekey == second.dedupekey == "schedule-0-20261124T100500Z"
    assert first.data["slot"] == "2026-11-24T10:05:00+00:00"


def test_ticks_match_the_schedule_trigger_that_declared_them() -> None:
    doc = {
        "name": "Nightly",
        "trigger": [{"type": "schedule", "cron": "0 2 * * *"}, {"type": "schedule", "cron": "0 14 * * *"}],
    }
    definition = parse_definition(doc)
    stored = StoredDefinition(id=definition.id, version=1, digest="", document=doc, definition=definition)
    [morning, afternoon] = schedules_of([stored])
    index = TriggerIndex([stored])
    [match] = index.matches(tick_event(afternoon.definition_id, afternoon.index, at(14, 0)))
    assert (match.stored.id, match.trigger.cron) == ("nightly", "0 14 * * *")
    assert morning.id == "nightly#0"


def test_tick_dedupe_keys_have_a_fixed_width_year() -> None:
    assert tick_event("d", 0, datetime(1, 1, 1, tzinfo=UTC)).dedupekey == "schedule-0-00010101T000000Z"
