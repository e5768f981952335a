"""What a trigger's flow control may say: `concurrency` with a key template, a limit and a mode
that is built (queue, skip), and a `priority`; anything else is refused where it is wrong."""

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
        ({"mode": "cancel_running"}, "trigger.concurrency.mode"),  # designed, not built yet
        ({"key": ""}, "trigger.concurrency.key"),
        ({"keys": "x"}, "trigger.concurrency"),
    ],
)
def test_bad_flow_control_is_refused_where_it_is(concurrency: dict[str, Any], where: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition(concurrency=concurrency))
    assert where in [error.location for error in info.value.errors]
