"""The trigger index: which definitions an event starts, and why the others do not."""

from __future__ import annotations

from typing import Any

from hookline.definitions import StoredDefinition
from hookline.matching import TriggerIndex, explain
from schemas.events import Event
from schemas.workflow import parse_definition


def stored(doc: dict[str, Any]) -> StoredDefinition:
    definition = parse_definition(doc)
    return StoredDefinition(id=definition.id, version=1, digest="", document=doc, definition=definition)


def alert(source: str = "alertmanager", **labels: str) -> Event:
    return Event(
        id="e",
        source=f"/hooks/{source}",
        type="io.prometheus.alertmanager.alert.firing",
        dedupekey="k",
        hooklinesource=source,
        data={"status": "firing", "alert": {"labels": labels}},
    )


def hook(name: str, source: str = "alertmanager", filter: Any = None) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "webhook", "source": source}
    if filter is not None:
        trigger["filter"] = filter
    return {"name": name, "trigger": trigger}


def test_only_definitions_whose_source_and_filter_match_are_started() -> None:
    index = TriggerIndex(
        [
            stored(hook("all alerts")),
            stored(hook("critical", filter=['severity="critical"'])),
            stored(hook("checkout", filter=['alertname="CheckoutDown"', 'severity=~"critical|page"'])),
            stored(hook("other source", source="github")),
            stored({"name": "manual only"}),
        ]
    )
    matched = [m.stored.id for m in index.matches(alert(alertname="CheckoutDown", severity="critical"))]
    assert matched == ["all-alerts", "checkout", "critical"]
    assert [m.stored.id for m in index.matches(alert(alertname="DiskFull", severity="warning"))] == ["all-alerts"]
    assert index.matches(alert(source="unknown")) == []


def test_a_definition_with_several_matching_triggers_is_started_once() -> None:
    doc = {
        "name": "twice",
        "trigger": [
            {"type": "webhook", "source": "alertmanager"},
            {"type": "webhook", "source": "alertmanager", "filter": ['severity="critical"']},
        ],
    }
    assert [m.stored.id for m in TriggerIndex([stored(doc)]).matches(alert(severity="critical"))] == ["twice"]


def test_indexed_and_scanned_triggers_give_the_same_answer_as_a_linear_scan() -> None:
    definitions = [
        stored(hook(f"alert {i}", filter=[f'alertname="A{i % 50}"', f'team="t{i % 7}"'])) for i in range(500)
    ]
    definitions += [stored(hook(f"regex {i}", filter=[f'alertname=~"A{i}.*"'])) for i in range(20)]
    definitions += [stored(hook(f"either {i}", filter=[f'alertname=~"A{i}|B{i}"', 'team!="t3"'])) for i in range(20)]
    index = TriggerIndex(definitions)
    for n in range(60):
        event = alert(alertname=f"{'AB'[n % 2]}{n}", team=f"t{n % 7}")
        expected = [e.definition_id for e in explain(definitions, event) if e.matches]
        assert [m.stored.id for m in index.matches(event)] == expected


def test_explain_says_why_each_definition_does_not_match_and_what_a_match_would_get() -> None:
    definitions = [
        stored(hook("critical", filter=['severity="critical"'])),
        stored(hook("github", source="github")),
        stored({"name": "manual"}),
        stored(
            {
                "name": "any",
                "trigger": {"type": "webhook", "source": "alertmanager", "input": {"sev": "${{ labels.severity }}"}},
            }
        ),
        stored(
            {
                "name": "needs version",
                "trigger": {"type": "webhook", "source": "alertmanager"},
                "inputs": {"type": "object", "required": ["version"]},
            }
        ),
    ]
    answers = {e.definition_id: e for e in explain(definitions, alert(severity="warning"))}
    assert {k: e.reason for k, e in answers.items() if k != "needs-version"} == {
        "critical": "severity=\"critical\" does not hold (labels.severity is 'warning')",
        "github": "source is 'alertmanager', not 'github'",
        "manual": "manual trigger",
        "any": None,
    }
    assert (answers["any"].input, answers["any"].workflow_id) == ({"sev": "warning"}, "any:event:alertmanager/k")
    reason = answers["needs-version"].reason
    assert reason is not None and "could not start" in reason and "input.version: is required" in reason
