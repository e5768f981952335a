"""A definition's `inputs`: the JSON Schema its author writes for a run's start input.

An author's schema is evaluated on every start, in the triggers and in the gateway, so what it
may say is bounded when the definition is saved:

- no references (`$ref`, `$dynamicRef`, `$recursiveRef`): one can point at itself, which never
  ends, or at nothing; the schema is written out in place instead;
- at most `MAX_JSON_DEPTH` levels of nesting.

Evaluating it on an input ends in a list of violations or in `UnusableSchema`, never in any
other exception, whatever the schema (an old stored one included) and the input.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError
from jsonschema.exceptions import ValidationError

from schemas.limits import MAX_JSON_DEPTH, depth_exceeds
from schemas.validation import SchemaError, location

__all__ = ["REFERENCE_KEYWORDS", "UnusableSchema", "input_violations", "inputs_schema_errors"]

REFERENCE_KEYWORDS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


class UnusableSchema(ValueError):
    """An `inputs` schema that cannot be evaluated (one saved before the bounds above held)."""


def _reference_errors(schema: Any, where: str) -> list[SchemaError]:
    errors: list[SchemaError] = []
    stack: list[tuple[Any, list[str | int]]] = [(schema, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            for key in sorted(set(item) & REFERENCE_KEYWORDS):
                errors.append(
                    SchemaError(
                        location([where, *path, key]),
                        f"references ({key}) are not allowed in inputs; write the schema out in place",
                    )
                )
            stack.extend((v, [*path, k]) for k, v in item.items() if k not in REFERENCE_KEYWORDS)
        elif isinstance(item, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(item))
    return sorted(errors, key=lambda e: e.location)


def inputs_schema_errors(schema: Any, where: str = "inputs") -> list[SchemaError]:
    """Every way `schema` breaks the rules in this module's docstring, with its location."""
    if depth_exceeds(schema, MAX_JSON_DEPTH):
        return [SchemaError(where, f"nested more than {MAX_JSON_DEPTH} levels deep; flatten the schema")]
    errors = _reference_errors(schema, where)
    if errors:
        return errors
    try:
        Draft202012Validator.check_schema(schema)
    except JsonSchemaError as exc:
        return [SchemaError(location([where, *exc.absolute_path]), f"not a valid JSON Schema: {exc.message}")]
    return []


def input_violations(schema: dict[str, Any], value: Any) -> list[ValidationError]:
    """Where `value` breaks `schema`, in document order; `UnusableSchema` if the schema cannot
    be evaluated at all."""
    try:
        found = list(Draft202012Validator(schema).iter_errors(value))
    except Exception as exc:  # an author's schema may fail inside any library; a start must not crash
        reason = "it refers to itself without end" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise UnusableSchema(f"the inputs schema cannot be applied ({reason}); fix the definition") from None
    return sorted(found, key=lambda e: list(map(str, e.absolute_path)))
