"""References to secrets in definitions: `{secret: NAME}` stands where a value would, and only the
worker that runs the step turns it into the value (from its secrets folder or environment), so the
value never enters a definition, an event, Temporal's history, the API's answers or a log."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NAME_PATTERN", "SecretRef", "is_reference", "malformed_references", "references"]

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


class SecretRef(BaseModel):
    """`{secret: NAME}`: the value of the worker's secret NAME."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str = Field(pattern=NAME_PATTERN)


def is_reference(value: Any) -> bool:
    """Whether `value` is a well-formed `{secret: NAME}`."""
    return (
        isinstance(value, dict)
        and list(value) == ["secret"]
        and isinstance(value["secret"], str)
        and _NAME.match(value["secret"]) is not None
    )


def references(value: Any) -> set[str]:
    """The secret names referenced anywhere in `value` (dicts and lists, iteratively)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if is_reference(item):
            found.add(item["secret"])
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def malformed_references(value: Any, where: str) -> list[str]:
    """Locations under `where` of dicts that look like a reference (`secret` their only key) but
    name no valid secret, so a typo fails when the definition is saved, not when a step runs."""
    bad: list[str] = []
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, dict):
            if list(item) == ["secret"] and not is_reference(item):
                bad.append(f"{at}.secret")
            else:
                stack.extend((f"{at}.{k}", v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{at}[{i}]", v) for i, v in enumerate(item))
    return sorted(bad)
