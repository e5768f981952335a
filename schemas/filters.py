"""Trigger filters: Alertmanager-style matchers over dotted paths into an event, plus an
optional JMESPath expression for what matchers cannot say.

    filter:
      match: ['severity="critical"', 'env!="dev"']          # all must hold
      any:   ['service=~"checkout|payments"', 'team="sre"'] # at least one must hold
      expression: "length(data.alerts || `[]`) > `0`"      # JMESPath, must be truthy

A list is shorthand for `match`. Operators: `=`, `!=`, `=~`, `!~`; regexes are anchored at both
ends and written in RE2 (Go) syntax, as in Alertmanager; they match in linear time
(`schemas.regex`). A path is dotted: `labels.severity`, `data.repository.name`, or a
CloudEvents attribute (`type`, `source`, `subject`, `id`, `dedupekey`, `hooklinesource`). A bare
name that is not an attribute is a label (`severity` means `labels.severity`). `labels` and
`annotations` are the alert's for Alertmanager events, else `data.labels` / `data.annotations`.
A missing value equals the empty string, so `env!="dev"` holds for an event without `env`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from schemas.expressions import ExpressionError, evaluate, expression_errors, truthy
from schemas.regex import Regex, RegexError, compile_regex
from schemas.validation import SchemaError

__all__ = [
    "Filter",
    "FilterError",
    "Matcher",
    "as_text",
    "event_context",
    "filter_errors",
    "lookup",
    "parse_filter",
    "parse_matcher",
]

ATTRIBUTES = frozenset({"id", "source", "type", "subject", "time", "specversion", "dedupekey", "hooklinesource"})
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*$')
_ESCAPES = re.compile(r"\\(.)")


class FilterError(ValueError):
    """A matcher or expression that does not parse."""


@dataclass(frozen=True, slots=True)
class Matcher:
    path: tuple[str, ...]
    op: Literal["=", "!=", "=~", "!~"]
    value: str
    text: str
    regex: Regex | None = None

    def holds(self, context: dict[str, Any]) -> bool:
        actual = as_text(lookup(context, self.path))
        if self.regex is not None:
            return (self.regex.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lookup(context: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = context
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@lru_cache(maxsize=4096)
def parse_matcher(text: str) -> Matcher:
    found = _MATCHER.match(text)
    if found is None:
        raise FilterError(f'{text!r} is not a matcher like name="value", name!="value", name=~"regex", name!~"regex"')
    name, op, quoted, bare = found.groups()
    value = _ESCAPES.sub(r"\1", quoted) if quoted is not None else bare
    path = tuple(name.split(".")) if "." in name or name in ATTRIBUTES else ("labels", name)
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = compile_regex(value)
        except RegexError as exc:
            raise FilterError(f"{text!r}: invalid regex: {exc}") from None
    return Matcher(path, op, value, text.strip(), regex)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Filter:
    match: tuple[Matcher, ...] = ()
    any: tuple[Matcher, ...] = ()
    expression: str | None = None

    def explain(self, context: dict[str, Any]) -> str | None:
        """None when the event passes; otherwise the first condition it failed, in words."""
        for matcher in self.match:
            if not matcher.holds(context):
                return f"{matcher.text} does not hold ({'.'.join(matcher.path)} is {_shown(context, matcher)})"
        if self.any and not any(m.holds(context) for m in self.any):
            return "none of " + ", ".join(m.text for m in self.any) + " holds"
        if self.expression is not None:
            try:
                if not truthy(evaluate(self.expression, context)):
                    return f"expression {self.expression!r} is false"
            except ExpressionError as exc:
                return str(exc)
        return None

    def passes(self, context: dict[str, Any]) -> bool:
        return self.explain(context) is None

    def index_key(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(path, values): every passing event has one of these values at that path. Taken from
        a `name="value"` matcher, or a `name=~"a|b|c"` one whose alternatives are literals."""
        for m in self.match:
            if m.op == "=" and m.value:
                return m.path, (m.value,)
        for m in self.match:
            if m.op == "=~" and (literals := _literal_alternatives(m.value)):
                return m.path, literals
        return None


def _literal_alternatives(pattern: str) -> tuple[str, ...] | None:
    parts = pattern.split("|")
    if all(part and re.escape(part) == part for part in parts):
        return tuple(parts)
    return None


def _shown(context: dict[str, Any], matcher: Matcher) -> str:
    value = lookup(context, matcher.path)
    return "missing" if value is None else repr(as_text(value))


def parse_filter(raw: Any) -> Filter:
    """A validated filter document (see the module docstring); raises `FilterError`."""
    if raw is None:
        return Filter()
    if isinstance(raw, list):
        raw = {"match": raw}
    match = tuple(parse_matcher(m) for m in _as_list(raw.get("match")))
    any_ = tuple(parse_matcher(m) for m in _as_list(raw.get("any")))
    expression = raw.get("expression")
    if expression is not None:
        errors = expression_errors(expression, "expression")
        if errors:
            raise FilterError(errors[0].message)
    return Filter(match, any_, expression)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def filter_errors(raw: Any, where: str) -> list[SchemaError]:
    """Every matcher or expression in a filter that does not parse, with its location."""
    if raw is None:
        return []
    doc: dict[str, Any] = {"match": raw} if isinstance(raw, list) else raw
    prefix = where
    errors: list[SchemaError] = []
    for key in ("match", "any"):
        items = _as_list(doc.get(key))
        for i, text in enumerate(items):
            try:
                parse_matcher(text)
            except FilterError as exc:
                location = f"{prefix}[{i}]" if isinstance(raw, list) else f"{prefix}.{key}[{i}]"
                errors.append(SchemaError(location, str(exc)))
    expression = doc.get("expression")
    if isinstance(expression, str):
        errors.extend(expression_errors(expression, f"{prefix}.expression"))
    return errors


def event_context(event: dict[str, Any]) -> dict[str, Any]:
    """What filters (and trigger input mappings) see: the CloudEvent as JSON (attributes and
    `data`), plus `labels` / `annotations` / `status` lifted from an alert."""
    raw_data = event.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    alert = data.get("alert")
    holder: dict[str, Any] = alert if isinstance(alert, dict) else data
    return {
        **event,
        "labels": holder.get("labels") if isinstance(holder.get("labels"), dict) else {},
        "annotations": holder.get("annotations") if isinstance(holder.get("annotations"), dict) else {},
        "status": data.get("status"),
    }
