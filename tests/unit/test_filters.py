"""Trigger filters: Alertmanager-style matchers over an event, `any`, and an expression."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.filters import FilterError, event_context, parse_filter, parse_matcher
from schemas.workflow import DefinitionError, parse_definition

ALERT_EVENT: dict[str, Any] = {
    "id": "e1",
    "source": "/hooks/alertmanager",
    "type": "io.prometheus.alertmanager.alert.firing",
    "subject": "HighErrorRate",
    "hooklinesource": "alertmanager",
    "data": {
        "status": "firing",
        "alert": {
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "replicas": 3},
            "annotations": {"summary": "5xx over 5%"},
        },
    },
}
CONTEXT = event_context(ALERT_EVENT)


@pytest.mark.parametrize(
    ("matcher", "holds"),
    [
        ('severity="critical"', True),
        ("severity=critical", True),
        ('severity!="critical"', False),
        ('service=~"checkout|payments"', True),
        ('service=~"check"', False),  # anchored at both ends, as in Alertmanager
        ('service!~"pay.*"', True),
        ('env!="dev"', True),  # a missing label equals ""
        ('env=""', True),
        ('replicas="3"', True),
        ('labels.alertname="HighErrorRate"', True),
        ('annotations.summary=~".*5xx.*"', True),
        ('type="io.prometheus.alertmanager.alert.firing"', True),
        ('subject="HighErrorRate"', True),
        ('status="resolved"', False),
        ('data.alert.labels.severity="critical"', True),
        ('data.nothing.here=""', True),
        (r'summary="quote \" inside"', False),
    ],
)
def test_matchers_follow_alertmanager_semantics(matcher: str, holds: bool) -> None:
    assert parse_matcher(matcher).holds(CONTEXT) is holds


@pytest.mark.parametrize("text", ["severity", '="x"', 'severity=="x"', 'sev erity="x"', 'a=~"("'])
def test_malformed_matchers_are_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse_matcher(text)


def test_match_is_and_any_is_or_and_the_expression_must_be_truthy() -> None:
    f = parse_filter(
        {
            "match": ['severity="critical"'],
            "any": ['service="payments"', 'service="checkout"'],
            "expression": "data.alert.labels.replicas > `2`",
        }
    )
    assert f.passes(CONTEXT)
    assert not parse_filter({"any": ['service="payments"', 'team="sre"']}).passes(CONTEXT)
    assert not parse_filter({"expression": "data.alert.labels.replicas > `5`"}).passes(CONTEXT)


def test_explain_names_the_first_condition_that_failed() -> None:
    f = parse_filter(['severity="critical"', 'env="prod"'])
    assert f.explain(CONTEXT) == 'env="prod" does not hold (labels.env is missing)'
    assert parse_filter({"any": ['team="a"', 'team="b"']}).explain(CONTEXT) == 'none of team="a", team="b" holds'


def test_cloudevents_without_an_alert_read_labels_from_data() -> None:
    context = event_context({"type": "com.github.push", "data": {"labels": {"repo": "hookline"}}})
    assert parse_matcher('repo="hookline"').holds(context)


def test_invalid_filters_are_rejected_with_the_definition_and_their_location() -> None:
    doc = {
        "name": "x",
        "trigger": [
            {"type": "webhook", "source": "alertmanager", "filter": ['severity="critical"', "severity"]},
            {
                "type": "webhook",
                "source": "alertmanager",
                "filter": {"match": ['a=~"("'], "expression": "labels.=="},
                "input": {"x": "${{ [ }}"},
            },
        ],
    }
    with pytest.raises(DefinitionError) as info:
        parse_definition(doc)
    assert [e.location for e in info.value.errors] == [
        "trigger[0].filter[1]",
        "trigger[1].filter.match[0]",
        "trigger[1].filter.expression",
        "trigger[1].input.x",
    ]


def test_unknown_filter_fields_are_schema_errors() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "trigger": {"type": "webhook", "source": "a", "filter": {"all": []}}})
    assert [str(e) for e in info.value.errors] == [
        "trigger.filter: Additional properties are not allowed ('all' was unexpected)"
    ]
