"""What a definition may ask for is bounded when it is parsed: schedules that can fire, and a
dependency graph of limited size that is checked without recursion."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.workflow import DefinitionError, parse_definition


def scheduled(*crons: str, **trigger: Any) -> dict[str, Any]:
    return {"name": "x", "trigger": [{"type": "schedule", "cron": c, **trigger} for c in crons]}


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 30 2 *",  # the 30th of February
        "0 0 31 4 *",  # the 31st of April
        "0 0 31 2,4,6,9,11 *",  # the 31st of months that have 30 days or fewer
        "0 0 0 30 2 *",  # seconds first
        "0 0 31 6 1#5",  # the 31st of June, or its fifth Monday
    ],
)
def test_a_schedule_that_never_fires_is_rejected_with_its_location(cron: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(scheduled("0 2 * * *", cron))
    [error] = info.value.errors
    assert error.location == "trigger[1].cron"
    assert "never fires" in error.message
    assert repr(cron) in error.message


def test_a_single_trigger_is_located_without_an_index() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "trigger": {"type": "schedule", "cron": "0 0 30 2 *"}})
    assert [e.location for e in info.value.errors] == ["trigger.cron"]


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 29 2 *",  # every four years
        "0 0 * 2 1#5",  # the fifth Monday of February: every 28 years or so
        "0 0 L 2 *",
        "0 0 31 * *",
        "*/5 * * * * *",
    ],
)
def test_a_schedule_that_fires_rarely_is_accepted(cron: str) -> None:
    assert parse_definition(scheduled(cron, timezone="Europe/Berlin")).triggers[0].cron == cron


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "x" * 5000, "../../etc/passwd"])
def test_a_time_zone_that_is_not_one_is_rejected_with_its_location(zone: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(scheduled("0 2 * * *", timezone=zone))
    assert [e.location for e in info.value.errors] == ["trigger[0].timezone"]
