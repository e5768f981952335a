"""What a trigger's flow control may say: `concurrency` with a key template, a limit and a mode,
`throttle` (with its `burst`), and a `priority`; anything else is refused where it is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.workflow import DefinitionError, parse_definition


def definition(**trigger: Any) -> dict[str, Any]:
    return {
        "name": "Remediate",
        "trigger": {"type": "webhook", "source": "alertmanager", **trigger},
        "steps": [{"name": "fix", "agent": "remediator"}],
    }


def test_concurrency_and_priority_are_read() -> None:
    parsed = parse_definition(
        definition(concurrency={"key": "${{ labels.service }}", "limit": 2, "mode": "skip"}, priority=3)
    )
    [trigger] = parsed.triggers
    assert trigger.concurrency is not None
    assert (trigger.concurrency.key, trigger.concurrency.limit, trigger.concurrency.mode) == (
        "${{ labels.service }}",
        2,
        "skip",
    )
    assert trigger.priority == 3
    defaults = parse_definition(definition(concurrency={})).triggers[0].concurrency
    assert defaults is not None and (defaults.key, defaults.limit, defaults.mode) == (None, 1, "queue")


@pytest.mark.parametrize(
    ("concurrency", "where"),
    [
        ({"limit": 0}, "trigger.concurrency.limit"),
        ({"mode": "newest"}, "trigger.concurrency.mode"),
        ({"key": ""}, "trigger.concurrency.key"),
        ({"keys": "x"}, "trigger.concurrency"),
    ],
)
def test_bad_flow_control_is_refused_where_it_is(concurrency: dict[str, Any], where: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(concurrency=concurrency))
    assert where in [error.location for error in info.value.errors]


def test_a_throttle_shares_the_lane_key_of_concurrency() -> None:
    parsed = parse_definition(definition(throttle={"key": "${{ labels.service }}", "limit": 10, "period": "1m"}))
    [trigger] = parsed.triggers
    assert trigger.flow_controlled and trigger.throttle is not None and trigger.throttle.period == 60.0
    assert trigger.lane_key == "${{ labels.service }}"
    assert not parse_definition(definition()).triggers[0].flow_controlled
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(concurrency={"key": "a"}, throttle={"key": "b", "limit": 1, "period": 1}))
    assert "the same key" in str(info.value)
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(throttle={"limit": 1}))
    assert "trigger.throttle.period" in [error.location for error in info.value.errors]


def test_a_throttle_burst_is_read_defaults_to_zero_and_is_never_negative() -> None:
    throttle = parse_definition(definition(throttle={"limit": 10, "period": "10s", "burst": 5})).triggers[0].throttle
    assert throttle is not None and (throttle.limit, throttle.period, throttle.burst) == (10, 10.0, 5)
    plain = parse_definition(definition(throttle={"limit": 10, "period": "10s"})).triggers[0].throttle
    assert plain is not None and plain.burst == 0
    for bad in (-1, 1.5, "2"):
        with pytest.raises(DefinitionError) as info:
            parse_definition(definition(throttle={"limit": 1, "period": 1, "burst": bad}))
        assert "trigger.throttle.burst" in [error.location for error in info.value.errors]


def test_a_resolved_queued_event_is_dropped_unless_the_trigger_keeps_it() -> None:
    lane = {"concurrency": {"key": "${{ labels.service }}"}}
    [plain] = parse_definition(definition(**lane)).triggers
    assert (plain.resolved_while_queued, plain.keeps_resolved) == ("drop", False)
    for on_resolved in ("signal", "cancel"):
        [kept] = parse_definition(definition(**lane, on_resolved=on_resolved, resolved_while_queued="keep")).triggers
        assert (kept.resolved_while_queued, kept.keeps_resolved) == ("keep", True)
    [throttled] = parse_definition(
        definition(throttle={"limit": 1, "period": "1m"}, resolved_while_queued="keep")
    ).triggers
    assert throttled.keeps_resolved


@pytest.mark.parametrize(
    ("trigger", "where", "why"),
    [
        ({"concurrency": {}, "resolved_while_queued": "run"}, "trigger.resolved_while_queued", ""),
        ({"concurrency": {}, "resolved_while_queued": True}, "trigger.resolved_while_queued", ""),
        ({"resolved_while_queued": "keep"}, "trigger.resolved_while_queued", "needs a lane"),
        (
            {"concurrency": {}, "on_resolved": "ignore", "resolved_while_queued": "keep"},
            "trigger.resolved_while_queued",
            "no effect with on_resolved: ignore",
        ),
        (
            {"concurrency": {}, "on_resolved": "start", "resolved_while_queued": "keep"},
            "trigger.resolved_while_queued",
            "no effect with on_resolved: start",
        ),
    ],
)
def test_resolved_while_queued_is_refused_where_it_is_wrong(trigger: dict[str, Any], where: str, why: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(**trigger))
    assert where in [error.location for error in info.value.errors]
    assert why in str(info.value)
