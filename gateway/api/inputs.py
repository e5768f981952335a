"""The input of a manual start, checked against the definition's `inputs` JSON Schema."""

from __future__ import annotations

import copy
from typing import Any

from jsonschema.exceptions import ValidationError

from gateway.errors import Unprocessable
from schemas.inputs import UnusableSchema, input_violations
from schemas.validation import SchemaError

__all__ = ["start_input"]

_MAX_ERRORS = 20


def _location(path: Any) -> str:
    return "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _error(error: ValidationError) -> SchemaError:
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            return SchemaError(_location([*error.absolute_path, missing[0]]), "is required")
    return SchemaError(_location(error.absolute_path), error.message)


def _with_defaults(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """`value` with the top-level properties it lacks set to their schema `default`."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return value
    defaults = {
        name: copy.deepcopy(spec["default"])
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec and name not in value
    }
    return {**value, **defaults}


def start_input(body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """The run's input from a start body `{"input": {...}}` (absent or null: `{}`); 422 with the
    location of every problem when it does not match `schema`."""
    unknown = sorted(set(body) - {"input"})
    if unknown:
        raise Unprocessable(
            'the start body is {"input": {...}}',
            errors=[SchemaError(name, "unknown field") for name in unknown],
        )
    value = body.get("input")
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise Unprocessable("the input must be a JSON object", errors=[SchemaError("input", "must be an object")])
    if not schema:
        return value
    value = _with_defaults(schema, value)
    try:
        found = input_violations(schema, value)
    except UnusableSchema as exc:
        raise Unprocessable(
            "the definition's inputs schema cannot be applied; fix the definition",
            errors=[SchemaError("inputs", str(exc))],
        ) from exc
    if found:
        raise Unprocessable(
            "the input does not match the definition's inputs schema",
            errors=[_error(e) for e in found[:_MAX_ERRORS]],
        )
    return value
