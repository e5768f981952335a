"""What authors write runs in bounded time: regexes (filter matchers, `inputs` patterns) on a
linear-time engine (RE2), and JMESPath expressions within a size limit at parse time and a work
budget at evaluation. A hostile one fails only itself, with a typed error."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InvalidPayload
from gateway.sources import JsonSource
from gateway.sources.config import JsonConfig
from schemas.expressions import MAX_EXPRESSION_LENGTH, ExpressionError, evaluate, expression_errors
from schemas.filters import parse_filter, parse_matcher
from schemas.workflow import DefinitionError, parse_definition

# A backtracking engine tries 2^40 ways to split the a's (days, with Python's `re`); RE2 takes
# microseconds. The bound below is a hang detector, not a speed target: five orders of
# magnitude above RE2 on a busy machine, and far below what backtracking would need.
CATASTROPHIC = "(a+)+$"
LABEL = "a" * 40 + "b"
HANG_S = 5.0


def finishes(fn: Any) -> bool:
    """Whether `fn` returns within `HANG_S` (then it is run here too). Tried in a forked child
    first: a backtracking regex engine loops in C holding the GIL, which no thread and no signal
    handler of this process would get past; the child is killed instead."""
    pid = os.fork()
    if pid == 0:  # the child: its outcome is its exit status only
        try:
            fn()
        finally:
            os._exit(0)
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            fn()  # again, here, for what it does (it finished in the child)
            return True
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def filtered(*matchers: str) -> dict[str, Any]:
    return {"name": "x", "trigger": [{"type": "webhook", "source": "am", "filter": list(matchers)}]}


@pytest.mark.parametrize("regex", [r"(a)\\1", "(?=a)b", "(?<!a)b", "a++"])
def test_a_matcher_regex_the_linear_engine_cannot_run_is_rejected_with_its_location(regex: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(filtered('env="prod"', f'service=~"{regex}"'))
    [error] = info.value.errors
    assert error.location == "trigger[0].filter[1]"
    assert "RE2" in error.message


def test_a_catastrophic_matcher_regex_runs_in_linear_time() -> None:
    matcher = parse_matcher(f'service=~"{CATASTROPHIC}"')
    context = {"labels": {"service": LABEL}}
    assert finishes(lambda: matcher.holds(context))
    assert not matcher.holds(context)
    assert parse_matcher('service=~"check.*|pay"').holds({"labels": {"service": "checkout"}})


@pytest.mark.parametrize(
    ("inputs", "where"),
    [
        ({"properties": {"x": {"type": "string", "pattern": r"(a)\1"}}}, "inputs.properties.x.pattern"),
        ({"patternProperties": {"(?=a)": {}}}, "inputs.patternProperties.(?=a)"),
        ({"propertyNames": {"pattern": "(?<=a)b"}}, "inputs.propertyNames.pattern"),
    ],
)
def test_an_inputs_pattern_the_linear_engine_cannot_run_is_rejected_with_its_location(
    inputs: dict[str, Any], where: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "inputs": inputs})
    [error] = info.value.errors
    assert error.location == where
    assert "RE2" in error.message


def test_unevaluated_properties_beside_pattern_properties_is_rejected() -> None:
    inputs = {"patternProperties": {"^x": {}}, "allOf": [{"unevaluatedProperties": False}]}
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "inputs": inputs})
    assert [e.location for e in info.value.errors] == ["inputs.allOf[0].unevaluatedProperties"]


@pytest.mark.parametrize(
    "inputs",
    [
        {"properties": {"x": {"type": "string", "pattern": CATASTROPHIC}}},
        {"patternProperties": {CATASTROPHIC: {"type": "integer"}}, "required": ["y"]},
        {"patternProperties": {CATASTROPHIC: {}}, "additionalProperties": {"type": "integer"}},
        {"propertyNames": {"pattern": CATASTROPHIC}},
    ],
    ids=["pattern", "patternProperties", "additionalProperties", "propertyNames"],
)
def test_an_inputs_pattern_runs_in_linear_time(inputs: dict[str, Any]) -> None:
    definition = parse_definition({"name": "x", "inputs": inputs})
    outcome: list[Any] = []

    def check() -> None:
        try:
            definition.checked_input({"x": LABEL, LABEL: LABEL})
        except DefinitionError as exc:
            outcome.append(exc)

    assert finishes(check)
    assert outcome, "the input breaks the schema"


def test_inputs_patterns_keep_their_meaning() -> None:
    inputs = {
        "properties": {"version": {"type": "string", "pattern": "^v[0-9]+$"}},
        "patternProperties": {"^tag_": {"type": "string"}},
        "additionalProperties": False,
    }
    definition = parse_definition({"name": "x", "inputs": inputs})
    assert definition.checked_input({"version": "v12", "tag_a": "b"}) == {"version": "v12", "tag_a": "b"}
    with pytest.raises(DefinitionError) as info:
        definition.checked_input({"version": "12", "tag_a": 1, "other": 2})
    assert [e.location for e in info.value.errors] == ["input", "input.tag_a", "input.version"]


def doubling(levels: int) -> str:
    """An expression whose value doubles at each of `levels` steps."""
    return " | ".join(["[@, @][]"] * levels)


def test_an_expression_nested_too_deep_is_rejected_at_parse_time() -> None:
    [error] = expression_errors(doubling(64), "steps[0].when")
    assert error.location == "steps[0].when"
    assert "nested more than" in error.message


def test_an_expression_too_long_is_rejected_at_parse_time() -> None:
    [error] = expression_errors("a || " * MAX_EXPRESSION_LENGTH + "a", "steps[0].when")
    assert f"longer than {MAX_EXPRESSION_LENGTH} characters" in error.message


@pytest.mark.parametrize("expression", ["(" * 499 + "a" + ")" * 499, "!" * 999 + "a", "[" * 499 + "@" + "]" * 499])
def test_an_expression_nested_deeper_than_the_parser_goes_is_an_error_not_a_crash(expression: str) -> None:
    [error] = expression_errors(expression, "w")
    assert "nested more than" in error.message


@pytest.mark.parametrize(
    "expression",
    [
        doubling(30),
        "[@, @]" + " | [@, @]" * 29 + " | to_string(@)",
        "'aaaaaaaa'" + " | join('', [@, @])" * 30,
        "[@, @]" + " | [@, @]" * 19 + " | [][][][][][][][][][][][][][][][][][][][]",
    ],
    ids=["flatten", "to_string", "join", "projections"],
)
def test_an_expression_whose_value_doubles_stops_at_the_work_budget(expression: str) -> None:
    assert expression_errors(expression, "w") == []
    failures: list[ExpressionError] = []

    def run() -> None:
        try:
            evaluate(expression, {"input": {"a": list(range(8))}})
        except ExpressionError as exc:
            failures.append(exc)

    assert finishes(run)
    [failure] = failures
    assert "work budget" in str(failure)


@pytest.mark.parametrize("expression", ["a < `1`", "`1` >= a"])
def test_an_expression_the_library_cannot_evaluate_is_an_expression_error(expression: str) -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate(expression, {"a": "x", "b": []})


def test_a_hostile_filter_expression_fails_only_its_own_match() -> None:
    hostile = parse_filter({"expression": doubling(30)})
    assert hostile.explain({"data": {}}) is not None
    assert parse_filter({"expression": "length(data.alerts) > `0`"}).passes({"data": {"alerts": [1]}})


def source_with_schema(tmp_path: Path, schema: dict[str, Any]) -> JsonSource:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    return JsonSource("orders", JsonConfig.model_validate({"schema_file": str(path)}))


def test_a_source_schema_pattern_runs_in_linear_time_also_when_explaining(tmp_path: Path) -> None:
    src = source_with_schema(tmp_path, {"properties": {"x": {"pattern": CATASTROPHIC}}, "required": ["y"]})
    body = json.dumps({"x": LABEL}).encode()
    failures: list[InvalidPayload] = []

    def parse() -> None:
        try:
            src.parse(body, {"Content-Type": "application/json"})
        except InvalidPayload as exc:
            failures.append(exc)

    assert finishes(parse)
    [failure] = failures
    assert {e.location for e in failure.errors} == {"x", "y"}


def test_a_source_schema_pattern_re2_refuses_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RE2"):
        source_with_schema(tmp_path, {"properties": {"x": {"pattern": "(?=a)"}}})


def test_comparing_a_large_value_with_a_small_one_costs_the_small_one() -> None:
    context = {"data": {"items": list(range(50_000))}}
    assert evaluate("data.items == `[]`", context) is False
    assert evaluate("length(data.items)", context) == 50_000
    assert evaluate("data.items", context) is context["data"]["items"]
