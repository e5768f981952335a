"""The one expression syntax of definitions: JMESPath, side-effect free and deterministic.

Where a value is computed (`when`, and strings inside `with`), it is a JMESPath expression over

    {"input":    the run's start input,
     "event":    the trigger event (CloudEvent attributes + data) or null,
     "steps":    {"<step name>": {"status": "succeeded" | "failed" | "skipped", "output": ...}},
     "workflow": {"id": ..., "definition_id": ..., "definition_version": ...}}

- `when: "input.environment == 'production'"` runs the step only if the result is truthy
  (JMESPath truthiness: false, null, "", [] and {} are false; 0 is true). `${{ ... }}` around it
  is allowed too.
- In `with`, a string that is exactly `${{ expr }}` becomes the expression's value (any JSON
  type); templates inside a longer string are replaced by the value as text (JSON for
  non-strings): `"deploy ${{ input.version }} to ${{ input.environment }}"`.
- Step names with spaces are quoted: `steps."Analyze Alert".output.severity`. A step's `output`
  is its stdout parsed as JSON when it is JSON, otherwise the text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jmespath
import jmespath.exceptions
import orjson
from jmespath.parser import ParsedResult

from schemas.validation import SchemaError

__all__ = ["ExpressionError", "evaluate", "expression_errors", "render", "template_errors", "truthy"]

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class ExpressionError(ValueError):
    """An expression that does not parse (caught when the definition is validated)."""


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> ParsedResult:
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        # The library's message spans lines with a caret under the position; one line reads better.
        reason = " ".join(str(exc).split())
        raise ExpressionError(f"invalid expression {expression!r}: {reason}") from None


def _strip(expression: str) -> str:
    match = _TEMPLATE.fullmatch(expression.strip())
    return (match.group(1) if match else expression).strip()


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """The value of a bare (or `${{ }}`-wrapped) expression."""
    try:
        return _compiled(_strip(expression)).search(context)
    except jmespath.exceptions.JMESPathError as exc:  # e.g. a function given the wrong type
        raise ExpressionError(f"cannot evaluate {expression!r}: {' '.join(str(exc).split())}") from None


def truthy(value: Any) -> bool:
    return not (value is None or value is False or value in ("", [], {}))


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def render(value: Any, context: dict[str, Any]) -> Any:
    """`value` with every `${{ }}` template evaluated, recursively through lists and objects."""
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value)
        if whole:
            return evaluate(whole.group(1), context)
        return _TEMPLATE.sub(lambda m: _as_text(evaluate(m.group(1), context)), value)
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    return value


def expression_errors(expression: str, where: str) -> list[SchemaError]:
    try:
        _compiled(_strip(expression))
    except ExpressionError as exc:
        return [SchemaError(where, str(exc))]
    return []


def template_errors(value: Any, where: str) -> list[SchemaError]:
    """Every template inside `value` that does not parse, with its location."""
    if isinstance(value, str):
        return [e for m in _TEMPLATE.finditer(value) for e in expression_errors(m.group(1), where)]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in template_errors(v, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in template_errors(v, f"{where}.{k}")]
    return []
