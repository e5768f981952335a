"""The console's definitions section without a stack: an API error's location found at its line
of the YAML, YAML syntax errors at their mark, the diff rows, and the start form made of an
`inputs` schema and read back. The pages themselves are tested in a browser on the real stack
(tests/integration/test_console_definitions.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import ApiOptions, ApiToken, GatewayOptions, GatewaySettings
from gateway.ui.input_form import fields_of, place_errors, read_input
from gateway.ui.yaml_lines import MAX_NODES, YamlProblem, annotate, line_of, locate, parse, side_by_side, unified
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.agents import AgentCatalog
from schemas.validation import SchemaError

TEXT = """\
name: Deploy
trigger:
  type: webhook
  source: alertmanager
  concurrency:
    key: "{{ event.labels.service }}"
steps:
  - name: test
    agent: test-runner
  - name: build
    agent: builder
    with:
      image.tag: v1
  - name: deploy
    requires: [test, build]
"""


@pytest.mark.parametrize(
    ("location", "line"),
    [
        ("name", 1),
        ("trigger", 2),
        ("trigger.source", 4),
        ("trigger[0].source", 4),  # one trigger written as a mapping; the API speaks of a list
        ("trigger[0].concurrency.key", 6),
        ("steps", 7),
        ("steps[0]", 8),
        ("steps[1].agent", 11),
        ("steps[1].with.image.tag", 13),  # a key holding a dot
        ("steps[2].requires[1]", 15),
        ("steps[2].agent", 14),  # missing: the step it is missing from
        ("steps[7].agent", 7),  # no such step: the list
        ("trigger.batch.key", 2),
        ("steps[1].with.image.tag.nothing", 13),
        ("timeout", 1),  # not in the text at all: the document
        ("", 1),
    ],
)
def test_an_api_location_is_found_at_its_line(location: str, line: int) -> None:
    assert line_of(parse(TEXT).root, location) == line


def test_errors_are_put_on_their_lines_and_past_the_end_on_the_last() -> None:
    root = parse(TEXT).root
    errors = [SchemaError("steps[1].agent", 'unknown agent "builder"'), SchemaError("steps[2].agent", "is required")]
    located = locate(errors, root)
    assert [n for _, n in located] == [11, 14]
    lines = annotate(TEXT, [*located, (SchemaError("x", "far"), 99)])
    assert [e.message for e in lines[10].errors] == ['unknown agent "builder"']
    assert [e.message for e in lines[13].errors] == ["is required"]
    assert [e.message for e in lines[-1].errors] == ["far"]
    assert sum(len(line.errors) for line in lines) == 3


def test_lines_are_numbered_as_yaml_counts_them() -> None:
    # A form feed breaks a line for str.splitlines, not for YAML (which refuses it anyway).
    text = "name: x\nsteps:\n  - agent: \x0cx\n"
    assert [line.text for line in annotate(text)] == ["name: x", "steps:", "  - agent: \x0cx"]
    with pytest.raises(YamlProblem) as caught:
        parse(text)
    assert (caught.value.line, caught.value.column) == (3, 12)
    assert "'\\x0c' is not allowed" in caught.value.message


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        ("name: x\nsteps:\n  - name: a\n   agent: b\n", 4, 4, "expected <block end>"),
        ("name: x\nsteps:\n  - name: a\n    agent: b: c\n", 4, 13, "mapping values are not allowed here"),
        ("name: [x\nsteps: []\n", 2, 6, "expected ',' or ']'"),
        ("name: x\n---\nname: y\n", 2, 1, "expected a single document"),
        ("name: !python/object x\n", 1, 7, "could not determine a constructor"),
        ("name: x\n\tsteps: []\n", 2, 1, "cannot start any token"),
    ],
)
def test_a_yaml_syntax_error_is_at_its_mark(text: str, line: int, column: int, says: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        parse(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert says in caught.value.message
    assert caught.value.error().location == f"line {line}, column {column}"


def test_an_alias_bomb_is_refused_before_it_is_built() -> None:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values
    with pytest.raises(YamlProblem, match=str(MAX_NODES)):
        parse("\n".join(levels))


def test_the_document_is_the_yaml_value_and_an_empty_text_has_none() -> None:
    assert parse(TEXT).document["steps"][1]["with"] == {"image.tag": "v1"}
    assert parse("").document is None and line_of(parse("").root, "name") == 1


def test_unified_diff_rows_carry_each_sides_line_numbers() -> None:
    rows = unified("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(r.kind, r.left, r.right, r.left_number, r.right_number) for r in rows] == [
        ("hunk", "@@ -1,3 +1,4 @@", None, None, None),
        ("same", "a", "a", 1, 1),
        ("del", "b", None, 2, None),
        ("add", None, "B", None, 2),
        ("same", "c", "c", 3, 3),
        ("add", None, "d", None, 4),
    ]
    assert unified("same\n", "same\n") == []


def test_side_by_side_puts_a_replaced_line_beside_its_replacement() -> None:
    rows = side_by_side("a\nb\nc\n", "a\nB\nB2\nc\n")
    assert [(r.kind, r.left, r.right) for r in rows[1:]] == [
        ("same", "a", "a"),
        ("change", "b", "B"),
        ("add", None, "B2"),
        ("same", "c", "c"),
    ]


# --- the start form -----------------------------------------------------------------------------

INPUTS: dict[str, Any] = {
    "type": "object",
    "required": ["version", "environment"],
    "properties": {
        "version": {"type": "string", "description": "The release tag", "pattern": "^v[0-9]", "maxLength": 20},
        "environment": {"enum": ["staging", "production"], "default": "staging"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 9, "default": 2},
        "ratio": {"type": "number"},
        "dry_run": {"type": "boolean", "default": True},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
        "anything": {},
    },
}


def test_each_simple_property_gets_an_input_of_its_kind_and_the_rest_json() -> None:
    fields = {f.name: f for f in fields_of(INPUTS)}
    assert {n: f.widget for n, f in fields.items()} == {
        "version": "text",
        "environment": "select",
        "replicas": "number",
        "ratio": "number",
        "dry_run": "checkbox",
        "tags": "json",
        "anything": "json",
    }
    assert [n for n, f in fields.items() if f.required] == ["version", "environment"]
    assert fields["version"].help == "The release tag" and fields["version"].attributes == {"maxlength": "20"}
    assert fields["environment"].options == [('"staging"', "staging"), ('"production"', "production")]
    assert fields["environment"].value == '"staging"'
    assert (fields["replicas"].value, fields["replicas"].attributes) == ("2", {"step": "1", "min": "1", "max": "9"})
    assert fields["ratio"].attributes == {"step": "any"} and fields["ratio"].value == ""
    assert fields["dry_run"].checked is True
    assert fields["tags"].value == '[\n  "a"\n]'
    assert fields["version"].form_name == "input.version"


@pytest.mark.parametrize("inputs", [None, {}, {"type": "object"}, {"properties": {}}, {"oneOf": []}])
def test_a_schema_without_properties_gets_one_json_field_for_the_whole_input(inputs: Any) -> None:
    [whole] = fields_of(inputs)
    assert (whole.widget, whole.form_name, whole.value) == ("json", "input", "{}")
    assert read_input([whole], {"input": '{"a": [1]}'}) == ({"a": [1]}, [])
    assert read_input([whole], {"input": "[1]"}) == ({}, [SchemaError("input", "must be a JSON object")])


def test_the_form_reads_back_as_typed_input_leaving_empty_fields_to_their_defaults() -> None:
    fields = fields_of(INPUTS)
    form = {
        "input.version": "v1.2",
        "input.environment": '"production"',
        "input.replicas": "3",
        "input.ratio": "0.5",
        "input.tags": '["x", "y"]',
        "input.anything": "",
    }
    value, errors = read_input(fields, form)
    assert errors == []
    assert value == {
        "version": "v1.2",
        "environment": "production",
        "replicas": 3,
        "ratio": 0.5,
        "dry_run": False,  # an unchecked box is false
        "tags": ["x", "y"],
    }


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("replicas", "three", "not a number"),
        ("replicas", "2.5", "not an integer"),
        ("ratio", "inf", "not a finite number"),
        ("tags", "[1,", "Expecting"),
    ],
)
def test_what_cannot_be_read_is_an_error_at_its_field(name: str, text: str, says: str) -> None:
    fields = fields_of(INPUTS)
    _, errors = read_input(fields, {f"input.{name}": text})
    assert [e.location for e in errors] == [f"input.{name}"] and says in errors[0].message
    assert next(f for f in fields if f.name == name).value == text  # shown again as typed


def test_api_errors_go_to_their_fields_and_the_rest_above_the_form() -> None:
    fields = fields_of(INPUTS)
    rest = place_errors(
        fields,
        [
            SchemaError("input.version", "'x' does not match '^v[0-9]'"),
            SchemaError("input.tags[1]", "1 is not of type 'string'"),
            SchemaError("input", "Additional properties are not allowed ('zone' was unexpected)"),
            SchemaError("definition", 'agent "builder" is gone'),
        ],
    )
    by_name = {f.name: f.errors for f in fields}
    assert by_name["version"] == ["'x' does not match '^v[0-9]'"]
    assert by_name["tags"] == ["input.tags[1]: 1 is not of type 'string'"]
    assert [e.location for e in rest] == ["input", "definition"]


# --- the editor, with the API's dependencies down -----------------------------------------------

AUTHOR = ApiToken(name="author", token=SecretStr("console-author-secret"), team="team-a", scopes=["read", "write"])
READER = ApiToken(name="reader", token=SecretStr("console-reader-secret"), team="team-a", scopes=["read"])


@pytest.fixture
async def console(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        gateway=GatewayOptions(max_body_bytes=65536),
        api=ApiOptions(tokens=[AUTHOR, READER]),
    )
    return await aiohttp_client(create_app(settings, agents=AgentCatalog()))


async def signed_in(console: TestClient[Any, Any], token: ApiToken) -> str:
    """Sign in; the page's CSRF token."""
    await console.post("/ui/login", data={"token": token.token.get_secret_value(), "next": "/ui/"})
    page = await (await console.get("/ui/login?next=/ui/definitions/new")).text()
    found = re.search(r'name="csrf-token" content="([^"]*)"', page)
    assert found is not None
    return found.group(1)


async def test_a_yaml_syntax_error_is_shown_at_its_line_without_asking_the_api(console: TestClient[Any, Any]) -> None:
    csrf = await signed_in(console, AUTHOR)
    text = "name: x\r\nsteps:\r\n  - name: a\r\n   agent: b\r\n"  # as a browser sends a textarea
    response = await console.post("/ui/definitions/new", data={"csrf": csrf, "yaml": text, "op": "save"})
    # The API is down (Kafka and Temporal are not running): any call to it would answer 503.
    assert response.status == 422
    html = await response.text()
    assert '<tr id="L4" class="line-error">' in html and 'href="#L4">line 4</a>' in html
    assert "while parsing a block collection" in html and "503" not in html
    assert "   agent: b\n</textarea>" in html  # the text is kept to be fixed


async def test_a_read_only_token_cannot_open_the_editor(console: TestClient[Any, Any]) -> None:
    await signed_in(console, READER)
    response = await console.get("/ui/definitions/new")
    assert response.status == 403
    assert "scope, which this page needs" in await response.text()


async def test_a_yaml_value_json_cannot_carry_is_explained_without_asking_the_api(
    console: TestClient[Any, Any],
) -> None:
    csrf = await signed_in(console, AUTHOR)
    response = await console.post(
        "/ui/definitions/new", data={"csrf": csrf, "yaml": "name: x\n1: one\n", "op": "validate"}
    )
    assert response.status == 422
    html = await response.text()
    assert "JSON cannot carry" in html and "503" not in html
