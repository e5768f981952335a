"""The start form of a definition, made from its `inputs` JSON Schema, and the run input read
back from that form.

A top-level property of type string, number, integer or boolean, or with an `enum`, gets an
input of its kind (its default filled in, `required` marked, its description as help); any other
property (objects, arrays, unions, no type) gets a JSON textarea. A schema without properties
gets one JSON textarea for the whole input. The form checks only what it must to build the JSON
(a number is a number, JSON parses); the API applies the schema and says where the input breaks it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.validation import SchemaError

__all__ = ["WHOLE", "Field", "fields_of", "place_errors", "read_input"]

#: The form field of the input; `input.<name>` those of its properties.
WHOLE = "input"
_SIMPLE = {"string": "text", "number": "number", "integer": "number", "boolean": "checkbox"}


@dataclass(slots=True)
class Field:
    """One input of the form: `name` is the property's (the form field is `input.<name>`)."""

    name: str  # "" for the whole input
    widget: str  # text, number, checkbox, select or json
    kind: str | None = None  # the schema's type, when it is one
    label: str = ""
    help: str | None = None
    required: bool = False
    value: str = ""  # as the form shows it
    checked: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (form value: JSON, label)
    attributes: dict[str, str] = field(default_factory=dict)  # min, max, step, minlength, maxlength
    errors: list[str] = field(default_factory=list)

    @property
    def form_name(self) -> str:
        return f"{WHOLE}.{self.name}" if self.name else WHOLE


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _number_text(value: Any) -> str:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _field(name: str, spec: Any, required: bool) -> Field:
    spec = spec if isinstance(spec, dict) else {}
    kind = spec.get("type") if isinstance(spec.get("type"), str) else None
    described = spec.get("description")
    made = Field(
        name=name,
        widget="json",
        kind=kind,
        label=str(spec.get("title") or name),
        help=str(described) if described else None,
        required=required,
    )
    default = spec.get("default")
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        made.widget = "select"
        made.options = [(json.dumps(v), v if isinstance(v, str) else json.dumps(v)) for v in spec["enum"]]
        made.value = json.dumps(default) if "default" in spec else ""
    elif kind in _SIMPLE:
        made.widget = _SIMPLE[kind]
        if kind == "boolean":
            made.checked = default is True
        elif kind == "string":
            made.value = default if isinstance(default, str) else ""
            made.attributes = {
                a: str(spec[k])
                for k, a in (("minLength", "minlength"), ("maxLength", "maxlength"))
                if isinstance(spec.get(k), int)
            }
        else:
            made.value = _number_text(default)
            made.attributes = {"step": "1" if kind == "integer" else "any"}
            made.attributes |= {
                a: _number_text(spec[k])
                for k, a in (("minimum", "min"), ("maximum", "max"))
                if _number_text(spec.get(k))
            }
    elif "default" in spec:
        made.value = _json(default)
    return made


def fields_of(inputs: Any) -> list[Field]:
    """The form of a definition's `inputs` schema (None: any input object)."""
    properties = inputs.get("properties") if isinstance(inputs, dict) else None
    if not isinstance(properties, dict) or not properties:
        return [Field(name="", widget="json", label="input", help="The run's input, a JSON object.", value="{}")]
    required = inputs.get("required") if isinstance(inputs.get("required"), list) else []
    return [_field(str(name), spec, name in required) for name, spec in properties.items()]


def read_input(fields: Iterable[Field], form: Mapping[str, Any]) -> tuple[dict[str, Any], list[SchemaError]]:
    """The run input the submitted `form` gives (an empty field is left out, so the schema's
    default applies), and what could not be read (located as the API locates: `input.<name>`).
    Each field keeps what was submitted, to show the form again as it was."""
    value: dict[str, Any] = {}
    errors: list[SchemaError] = []
    for f in fields:
        raw = form.get(f.form_name)
        text = raw.strip() if isinstance(raw, str) else ""
        where = f.form_name
        if f.widget == "checkbox":
            f.checked = raw is not None
            value[f.name] = f.checked
            continue
        f.value = raw if isinstance(raw, str) else ""
        if not text:
            continue
        try:
            if f.widget == "number":
                value[f.name] = _number(text, integer=f.kind == "integer")
            elif f.widget == "text":
                value[f.name] = raw
            else:
                value[f.name] = json.loads(text)
        except ValueError as exc:
            errors.append(SchemaError(where, str(exc)))
    if "" in value:  # the whole input in one field
        whole = value.pop("")
        if not isinstance(whole, dict):
            errors.append(SchemaError(WHOLE, "must be a JSON object"))
            return {}, errors
        return whole, errors
    return value, errors


def _number(text: str, *, integer: bool) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]!r} is not a finite number")
    if integer or number.is_integer():
        if not number.is_integer():
            raise ValueError(f"{text[:40]!r} is not an integer")
        return int(text) if text.lstrip("+-").isdigit() else int(number)
    return number


def place_errors(fields: list[Field], errors: Iterable[SchemaError]) -> list[SchemaError]:
    """Each error whose location names a field (`input.version`, `input.tags[2]`) put on that
    field; the others (about the input as a whole, or not about the input) returned."""
    by_name = {f.form_name: f for f in fields}
    rest = []
    for error in errors:
        owner = _owner(by_name, error.location)
        if owner is None:
            rest.append(error)
        else:
            owner.errors.append(error.message if error.location == owner.form_name else str(error))
    return rest


def _owner(by_name: Mapping[str, Field], location: str) -> Field | None:
    # The longest field name the location starts with, followed by its end, `.` or `[`.
    best = None
    for name, f in by_name.items():
        if location.startswith(name) and location[len(name) : len(name) + 1] in ("", ".", "["):
            if best is None or len(name) > len(best.form_name):
                best = f
    return best
