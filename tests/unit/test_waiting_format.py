"""Waiting steps in the definition format (docs/waiting-steps.md): what an approval, a wait_for
and a sleep may say, what is refused and where, who may decide an approval, and the correlation
keys both sides compute."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.definitions import StoredDefinition
from hookline.runs import build_request, waits_id
from hookline.settings import TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.workflow import Approval, DefinitionError, Sleep, WaitFor, parse_definition

WAITING = {
    "name": "Guarded Restart",
    "steps": [
        {"name": "ask", "agent": "notifier", "with": {"url": "${{ approvals.approve.url }}"}},
        {
            "name": "approve",
            "approval": {
                "team": "sre",
                "scope": "execute",
                "tokens": ["alice", "bob"],
                "message": "Restart ${{ input.service }}?",
                "timeout": "30m",
                "on_timeout": "approve",
                "min_approvals": 2,
                "on_resolved": "ignore",
            },
        },
        {
            "name": "quiet",
            "wait_for": {
                "source": "alertmanager",
                "filter": ['alertname="CanaryErrors"'],
                "correlate": {"event": "${{ labels.deployment }}", "run": "${{ input.deployment }}"},
                "timeout": "10m",
                "on_timeout": "succeed",
                "lookback": "2m",
            },
        },
        {"name": "deployed", "wait_for": {"topic": "deployments"}},
        {"name": "pause", "sleep": {"for": "10m"}},
        {"name": "window", "sleep": {"until": "${{ input.window }}"}},
    ],
}


def test_every_waiting_kind_and_option_is_read() -> None:
    definition = parse_definition(WAITING)
    kinds = {step.name: type(step.waits).__name__ if step.waits else None for step in definition.steps}
    assert kinds == {
        "ask": None,
        "approve": "Approval",
        "quiet": "WaitFor",
        "deployed": "WaitFor",
        "pause": "Sleep",
        "window": "Sleep",
    }
    approval = definition.steps[1].approval
    assert approval == Approval(
        team="sre",
        scope="execute",
        tokens=("alice", "bob"),
        message="Restart ${{ input.service }}?",
        timeout=1800.0,
        on_timeout="approve",
        min_approvals=2,
        on_resolved="ignore",
    )
    quiet = definition.steps[2].wait_for
    assert quiet is not None and (quiet.timeout, quiet.lookback, quiet.on_timeout) == (600.0, 120.0, "succeed")
    assert definition.steps[3].wait_for is not None and definition.steps[3].wait_for.source_name == "kafka:deployments"
    assert definition.steps[4].sleep == Sleep(for_=600.0)


def test_defaults_of_the_waiting_kinds() -> None:
    approval, wait, sleep = Approval(), WaitFor(source="s"), Sleep(for_=1.0)
    assert (approval.scope, approval.on_timeout, approval.min_approvals, approval.timeout) == (
        "execute",
        "reject",
        1,
        None,
    )
    assert (wait.on_timeout, wait.lookback, wait.timeout) == ("fail", 0.0, None)
    assert approval.on_resolved == wait.on_resolved == sleep.on_resolved == "skip"


def _with_step(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": "x", "steps": [{"name": "first", "agent": "notifier"}, step]}


@pytest.mark.parametrize(
    ("step", "errors"),
    [
        (
            {"name": "a", "approval": {}, "agent": "notifier"},
            [
                "steps[1]: a step runs exactly one of: `agent`, `agent_id` (the API form, with `type: agent`) or an "
                "inline `action`, or waits: `approval`, `wait_for` or `sleep`"
            ],
        ),
        (
            {"name": "a", "approval": {}, "sleep": {"for": "1s"}},
            [
                "steps[1]: a step runs exactly one of: `agent`, `agent_id` (the API form, with `type: agent`) or an "
                "inline `action`, or waits: `approval`, `wait_for` or `sleep`"
            ],
        ),
        ({"name": "a", "approval": {"on_timeout": "maybe"}}, ["steps[1].approval.on_timeout"]),
        ({"name": "a", "approval": {"min_approvals": 0}}, ["steps[1].approval.min_approvals"]),
        ({"name": "a", "approval": {"tokens": []}}, ["steps[1].approval.tokens"]),
        ({"name": "a", "approval": {"message": "${{ ( }}"}}, ["steps[1].approval.message"]),
        ({"name": "a", "approval": {"timeout": "soon"}}, ["steps[1].approval.timeout"]),
        ({"name": "a", "wait_for": {"source": "s", "topic": "t"}}, ["steps[1].wait_for"]),
        ({"name": "a", "wait_for": {"filter": ["x"]}}, ["steps[1].wait_for"]),
        ({"name": "a", "wait_for": {"source": "s", "filter": ["not a matcher"]}}, ["steps[1].wait_for.filter[0]"]),
        ({"name": "a", "wait_for": {"source": "s", "correlate": {"event": "x"}}}, ["steps[1].wait_for.correlate.run"]),
        (
            {"name": "a", "wait_for": {"source": "s", "correlate": {"event": "${{ a[ }}", "run": "x"}}},
            ["steps[1].wait_for.correlate.event"],
        ),
        ({"name": "a", "wait_for": {"source": "s", "lookback": -1}}, ["steps[1].wait_for.lookback"]),
        ({"name": "a", "sleep": {}}, ["steps[1].sleep"]),
        ({"name": "a", "sleep": {"for": "1m", "until": "x"}}, ["steps[1].sleep"]),
        ({"name": "a", "sleep": {"until": "${{ ( }}"}}, ["steps[1].sleep.until"]),
        (
            {"name": "a", "sleep": {"for": "1m"}, "with": {"a": 1}, "retries": 3, "timeout": 5},
            ["steps[1].timeout", "steps[1].with", "steps[1].retries"],
        ),
        ({"name": "a", "approval": {}, "on_failure": {"agent": "notifier"}}, ["steps[1].on_failure"]),
    ],
)
def test_a_bad_waiting_step_is_refused_at_its_location(step: dict[str, Any], errors: list[str]) -> None:
    with pytest.raises(DefinitionError) as raised:
        parse_definition(_with_step(step))
    found = [str(e) if ":" in errors[0] else e.location for e in raised.value.errors]
    assert sorted(found) == sorted(errors)


@pytest.mark.parametrize(
    ("spec", "who", "refusal"),
    [
        (Approval(), ("ci", "team-a", ["execute"], False), None),
        (Approval(), ("ci", "team-b", ["execute"], False), 'only tokens of team "team-a" may decide this approval'),
        (Approval(), ("ops", "*", ["execute"], True), None),
        (
            Approval(),
            ("viewer", "team-a", ["read"], False),
            'deciding this approval needs a token with scope "execute"',
        ),
        (Approval(scope="read"), ("viewer", "team-a", ["read"], False), None),
        (Approval(team="sre"), ("pager", "sre", ["execute"], False), None),
        (
            Approval(team="sre"),
            ("ci", "team-a", ["execute"], False),
            'only tokens of team "sre" may decide this approval',
        ),
        (Approval(tokens=("alice",)), ("alice", "team-a", ["execute"], False), None),
        (
            Approval(tokens=("alice",)),
            ("ci", "team-a", ["execute"], False),
            "only the tokens alice may decide this approval",
        ),
        (
            Approval(tokens=("alice",)),
            ("ops", "*", ["execute"], True),
            "only the tokens alice may decide this approval",
        ),
    ],
)
def test_who_may_decide_an_approval(spec: Approval, who: tuple[str, str, list[str], bool], refusal: str | None) -> None:
    name, team, scopes, operator = who
    assert spec.refusal("team-a", name, team, scopes, operator=operator) == refusal


@pytest.mark.parametrize(
    ("value", "key"),
    [("abc", "abc"), (None, ""), (42, "42"), ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'), (True, "true")],
)
def test_both_sides_of_a_correlation_give_the_same_text(value: Any, key: str) -> None:
    wait = WaitFor(source="s", correlate={"event": "${{ data.v }}", "run": "${{ input.v }}"})
    assert wait.event_key({"data": {"v": value}}) == wait.run_key({"input": {"v": value}}) == key


def test_without_correlate_every_matching_event_has_one_key() -> None:
    assert WaitFor(source="s").event_key({"data": {"anything": 1}}) == WaitFor(source="s").run_key({}) == ""


def test_a_mailbox_id_is_the_definitions_and_depends_on_step_and_key() -> None:
    one = waits_id("team-a~deploy", "quiet", "d-1")
    assert one.startswith("team-a~deploy:wait:")
    assert one == waits_id("team-a~deploy", "quiet", "d-1")
    assert len({one, waits_id("team-a~deploy", "quiet", "d-2"), waits_id("team-a~deploy", "other", "d-1")}) == 3


def test_a_waiting_step_runs_nowhere_and_needs_no_agent() -> None:
    definition = parse_definition(WAITING, agents=["notifier"])
    stored = StoredDefinition(
        id=definition.id, version=1, digest="", document=WAITING, definition=definition, created_at=""
    )
    catalog = AgentCatalog(agents={"notifier": Agent(name="notifier", command=("true",))})
    request = build_request(stored, catalog, TemporalSettings(), input={"service": "checkout"})
    assert set(request.routes) == {"ask"}
