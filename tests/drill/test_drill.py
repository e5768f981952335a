"""Faults under load: a part of the stack is SIGKILLed (and restarted) or SIGSTOPped (and
continued) while alerts arrive, and still every alert gets exactly one completed run.

`make test` runs the short drill; `make drill` (HOOKLINE_DRILL=full) runs every part at every
moment, HOOKLINE_DRILL_ROUNDS times (default 1)."""

from __future__ import annotations

import os

import pytest

from tests.drill.conftest import OUTCOMES
from tests.drill.harness import Drill, DrillStack, Fault, Moment, Part

pytestmark = [pytest.mark.integration, pytest.mark.drill, pytest.mark.timeout(600)]

FULL = os.environ.get("HOOKLINE_DRILL") == "full"
ROUNDS = int(os.environ.get("HOOKLINE_DRILL_ROUNDS", "1"))
PARTS: tuple[Part, ...] = ("gateway", "triggers", "worker", "kafka", "temporal")
MOMENTS: tuple[Moment, ...] = ("early", "mid", "completing")

SCENARIOS: list[tuple[Part, Fault, Moment]] = (
    [(part, "kill", moment) for part in PARTS for moment in MOMENTS]
    + [("triggers", "stop", "mid"), ("worker", "stop", "mid")]
    if FULL
    # The short drill: the broker killed (every component loses it) and a worker frozen. A killed
    # worker and killed triggers have tests of their own under load (test_durability,
    # test_triggers_process, test_flow_control_faults); `make drill` kills every part.
    else [("kafka", "kill", "mid"), ("worker", "stop", "mid")]
)
# A step in flight when its worker died or froze, or while Temporal was down (its completion
# was lost), may run again: at most one per activity slot of the one worker (32).
RERUN_ALLOWED = {("worker", "kill"), ("worker", "stop"), ("temporal", "kill")}


@pytest.mark.parametrize("round_", range(ROUNDS), ids=lambda r: f"round{r + 1}")
@pytest.mark.parametrize(("part", "fault", "moment"), SCENARIOS)
async def test_every_alert_gets_exactly_one_completed_run(
    drill_stack: DrillStack, part: Part, fault: Fault, moment: Moment, round_: int
) -> None:
    outcome = await Drill(drill_stack).run(part, fault, moment)
    OUTCOMES.append(outcome)
    assert outcome.died == [], f"components exited on their own: {outcome.died}"
    assert (outcome.lost, outcome.extra, outcome.dlq) == (0, 0, 0), outcome
    assert outcome.runs == outcome.completed == outcome.alerts, outcome
    assert all(200 <= status < 300 or status in (0, 503) for status in outcome.answers), outcome.answers
    if (part, fault) in RERUN_ALLOWED:
        assert outcome.twice <= 32, outcome
    else:
        assert outcome.twice == 0, outcome
