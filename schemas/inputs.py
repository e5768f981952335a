"""A definition's `inputs`: the JSON Schema its author writes for a run's start input.

An author's schema is evaluated on every start, in the triggers and in the gateway, so what it
may say is bounded when the definition is saved:

- no references (`$ref`, `$dynamicRef`, `$recursiveRef`): one can point at itself, which never
  ends, or at nothing; the schema is written out in place instead;
- at most `MAX_JSON_DEPTH` levels of nesting;
- `pattern` and `patternProperties` are RE2 regexes (`schemas.regex`), matched in linear time;
  `unevaluatedProperties` cannot sit beside `patternProperties` (jsonschema would evaluate the
  patterns with Python's backtracking `re` to find the evaluated keys).

Evaluating it on an input ends in a list of violations or in `UnusableSchema`, never in any
other exception, whatever the schema (an old stored one included) and the input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError as JsonSchemaError
from jsonschema.exceptions import ValidationError

from schemas.limits import MAX_JSON_DEPTH, depth_exceeds
from schemas.regex import RegexError, compile_regex
from schemas.validation import SchemaError, location

__all__ = [
    "REFERENCE_KEYWORDS",
    "InputsValidator",
    "UnusableSchema",
    "input_violations",
    "inputs_schema_errors",
    "regex_errors",
]

REFERENCE_KEYWORDS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


class UnusableSchema(ValueError):
    """An `inputs` schema that cannot be evaluated (one saved before the bounds above held)."""


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and compile_regex(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _matched_by_patterns(schema: Mapping[str, Any], name: str) -> bool:
    return any(compile_regex(p).search(name) is not None for p in schema.get("patternProperties", {}))


def _pattern_properties(
    validator: Any, pattern_properties: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        regex = compile_regex(pattern)
        for name, value in instance.items():
            if regex.search(name) is not None:
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    # jsonschema's own keyword, with the patterns matched by RE2 instead of `re`.
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    extras = sorted(n for n in instance if n not in properties and not _matched_by_patterns(schema, n))
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{', '.join(map(repr, extras))} {verb} not match any of the regexes: {patterns}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({', '.join(map(repr, extras))} {verb} unexpected)"
            )


#: Draft 2020-12 with every keyword that matches a pattern doing it with RE2.
InputsValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


def regex_errors(schema: Any, where: str) -> list[SchemaError]:
    """Every `pattern` and `patternProperties` key in `schema` that RE2 refuses, and every
    `unevaluatedProperties` in a schema that also has `patternProperties`, with its location."""
    errors: list[SchemaError] = []
    pattern_properties = False
    unevaluated: list[list[str | int]] = []
    stack: list[tuple[Any, list[str | int]]] = [(schema, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(item))
            continue
        if not isinstance(item, dict):
            continue
        patterns = [("pattern", item["pattern"])] if isinstance(item.get("pattern"), str) else []
        if isinstance(item.get("patternProperties"), dict):
            pattern_properties = True
            patterns += [(f"patternProperties.{p}", p) for p in item["patternProperties"]]
        for key, pattern in patterns:
            try:
                compile_regex(pattern)
            except RegexError as exc:
                errors.append(SchemaError(location([where, *path, *key.split(".", 1)]), str(exc)))
        if "unevaluatedProperties" in item:
            unevaluated.append([*path, "unevaluatedProperties"])
        stack.extend((v, [*path, k]) for k, v in item.items())
    if pattern_properties:
        errors += [
            SchemaError(
                location([where, *path]),
                "unevaluatedProperties cannot be used with patternProperties in inputs; use additionalProperties",
            )
            for path in unevaluated
        ]
    return sorted(errors, key=lambda e: e.location)


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
    return regex_errors(schema, where)


def input_violations(schema: dict[str, Any], value: Any) -> list[ValidationError]:
    """Where `value` breaks `schema`, in document order; `UnusableSchema` if the schema cannot
    be evaluated at all."""
    try:
        found = list(InputsValidator(schema).iter_errors(value))
    except Exception as exc:  # an author's schema may fail inside any library; a start must not crash
        reason = "it refers to itself without end" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise UnusableSchema(f"the inputs schema cannot be applied ({reason}); fix the definition") from None
    return sorted(found, key=lambda e: list(map(str, e.absolute_path)))
