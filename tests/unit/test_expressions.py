"""The expression syntax: JMESPath in `when` and in `${{ }}` templates inside `with`."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.expressions import ExpressionError, evaluate, render, template_errors, truthy

CONTEXT: dict[str, Any] = {
    "input": {"environment": "production", "version": "v1.2.3", "replicas": 3},
    "event": {"type": "io.prometheus.alertmanager.alert.firing", "data": {"labels": {"severity": "critical"}}},
    "steps": {"Analyze Alert": {"status": "succeeded", "output": {"action": "restart", "targets": ["a", "b"]}}},
    "workflow": {"id": "incident-response:abc", "definition_id": "incident-response", "definition_version": 2},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("input.environment == 'production'", True),
        ("${{ input.environment == 'staging' }}", False),
        ("event.data.labels.severity", "critical"),
        ('steps."Analyze Alert".output.action', "restart"),
        ('length(steps."Analyze Alert".output.targets)', 2),
        ("input.missing", None),
        ("workflow.definition_version", 2),
    ],
)
def test_expressions_read_the_run_context(expression: str, expected: Any) -> None:
    assert evaluate(expression, CONTEXT) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), (False, False), ("", False), ([], False), ({}, False), (0, True), ("no", True), ([0], True)],
)
def test_truthiness_follows_jmespath(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_a_whole_template_keeps_the_value_type_and_embedded_ones_become_text() -> None:
    rendered = render(
        {
            "replicas": "${{ input.replicas }}",
            "targets": ['${{ steps."Analyze Alert".output.targets }}'],
            "message": "deploy ${{ input.version }} x${{ input.replicas }} ${{ input.missing }}",
            "literal": 5,
        },
        CONTEXT,
    )
    assert rendered == {
        "replicas": 3,
        "targets": [["a", "b"]],
        "message": "deploy v1.2.3 x3 null",
        "literal": 5,
    }


def test_type_errors_at_evaluation_are_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("length(input.replicas)", CONTEXT)


def test_template_errors_point_into_nested_values() -> None:
    errors = template_errors({"a": [{"b": "x ${{ ][ }}"}]}, "steps[0].with")
    assert [e.location for e in errors] == ["steps[0].with.a[0].b"]
