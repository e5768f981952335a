"""The input of a manual start: the body `{"input": {...}}`.

Only its shape is checked here; the definition's `inputs` schema is applied, once, where every
run is built (`hookline.runs.build_request`), for manual starts and events alike.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import Unprocessable
from schemas.validation import SchemaError

__all__ = ["start_input"]


def start_input(body: dict[str, Any]) -> dict[str, Any]:
    """The run's input from a start body `{"input": {...}}` (absent or null: `{}`); 422 for
    another field or an input that is not an object."""
    unknown = sorted(set(body) - {"input"})
    if unknown:
        raise Unprocessable(
            'the start body is {"input": {...}}',
            errors=[SchemaError(name, "unknown field") for name in unknown],
        )
    value = body.get("input")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unprocessable("the input must be a JSON object", errors=[SchemaError("input", "must be an object")])
    return value
