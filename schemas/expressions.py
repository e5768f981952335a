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

What an author writes is bounded, so one expression cannot hold a process: at most
`MAX_EXPRESSION_LENGTH` characters and `MAX_EXPRESSION_DEPTH` levels of syntax when the
definition is saved; at most `MAX_WORK` units of work per evaluation (a node evaluated, an entry
copied or compared), and no value larger than `MAX_VALUE_SIZE` written out. Over either, that
evaluation raises `ExpressionError`: the record or step it belongs to fails, nothing else.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.functions
import orjson
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

from schemas.validation import SchemaError

#: Longest expression, in characters (`${{ }}` excluded).
MAX_EXPRESSION_LENGTH = 1000
#: Deepest syntax tree: `a | b | c` is three levels, `a.b.c` two.
MAX_EXPRESSION_DEPTH = 48
#: Work one evaluation may do: real expressions use tens to a few thousand units (a filter over
#: 500 alerts ~3,000); the budget costs at most ~20 ms of one core (2-core machine, 2026).
MAX_WORK = 20_000
#: Largest value an expression may build or return, written out: ~16 MB of text, or a million
#: entries (a 1 MB webhook body is far below it).
MAX_VALUE_SIZE = 1_000_000
_CHARS_PER_UNIT = 16

__all__ = [
    "MAX_EXPRESSION_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_VALUE_SIZE",
    "MAX_WORK",
    "ExpressionError",
    "evaluate",
    "expression_errors",
    "render",
    "template_errors",
    "truthy",
]

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class ExpressionError(ValueError):
    """An expression that does not parse (caught when the definition is validated), or one that
    fails or goes over its work budget when evaluated."""


def _depth(parsed: Any) -> int:
    deepest, stack = 0, [(parsed, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in node.get("children", ()) if isinstance(c, dict) and "type" in c)
    return deepest


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> ParsedResult:
    shown = expression if len(expression) <= 80 else expression[:77] + "..."
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression {shown!r} is longer than {MAX_EXPRESSION_LENGTH} characters; split it, or compute "
            "the value in a step"
        )
    too_deep = ExpressionError(
        f"expression {shown!r} is nested more than {MAX_EXPRESSION_DEPTH} levels deep; simplify it"
    )
    try:
        parsed = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        # The library's message spans lines with a caret under the position; one line reads better.
        reason = " ".join(str(exc).split())
        raise ExpressionError(f"invalid expression {expression!r}: {reason}") from None
    except RecursionError:  # the parser recurses once per level
        raise too_deep from None
    if _depth(parsed.parsed) > MAX_EXPRESSION_DEPTH:
        raise too_deep
    return parsed


_BUILDING = frozenset(
    {
        "multi_select_list",
        "multi_select_dict",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "slice",
        "function_expression",
    }
)


@lru_cache(maxsize=1024)
def _builds(parsed: ParsedResult) -> bool:
    """Whether the expression can return a value it built (rather than a piece of its input)."""
    stack = [parsed.parsed]
    while stack:
        node = stack.pop()
        if node["type"] in _BUILDING:
            return True
        stack.extend(c for c in node.get("children", ()) if isinstance(c, dict) and "type" in c)
    return False


class _Budget(Exception):
    pass


class _BoundedInterpreter(TreeInterpreter):
    """jmespath's interpreter with two bounds. Work: every node evaluated, every entry a list or
    object copies, counts against `MAX_WORK`. Size: a value whose expansion can cost more than it
    took to build (a list holding one value twice, `[@, @]`, doubles at every step, yet only
    serialising, comparing or `to_string` pays for it) may not expand beyond `MAX_VALUE_SIZE`.
    Sizes are kept by identity, so shared values are sized once."""

    def __init__(self) -> None:
        self._calls = jmespath.functions.Functions()
        super().__init__(jmespath.Options(custom_functions=self._calls))
        self._work = 0
        self._sizes: dict[int, int] = {}
        self._held: list[Any] = []  # what was sized stays alive, so its id stays its own

    def _charge(self, units: int) -> None:
        self._work += units
        if self._work > MAX_WORK:
            raise _Budget

    def expanded(self, value: Any, limit: int = MAX_VALUE_SIZE) -> int:
        """The size `value` has written out (a node is 1, a string 1 per 16 characters); past
        `limit` (also while it is still being measured), `_Budget`."""
        if isinstance(value, str):
            return 1 + len(value) // _CHARS_PER_UNIT
        if not isinstance(value, list | dict):
            return 1
        stack: list[tuple[Any, bool]] = [(value, False)]
        measured = 0
        while stack:
            item, children_known = stack.pop()
            if id(item) in self._sizes:
                continue
            children = list(item.values()) if isinstance(item, dict) else item
            if not children_known:
                # Every entry looked at counts: a value too large stops the walk, not its end.
                measured += len(children)
                if measured > limit:
                    raise _Budget
                stack.append((item, True))
                stack.extend((c, False) for c in children if isinstance(c, list | dict) and id(c) not in self._sizes)
                continue
            total = 1
            for c in children:
                total += self._sizes[id(c)] if isinstance(c, list | dict) else self.expanded(c)
            self._sizes[id(item)] = total
            self._held.append(item)
            if total > limit:
                raise _Budget
        return self._sizes[id(value)]

    def _within_budget(self, value: Any) -> int:
        """`value`'s expanded size, or just over what is left of the budget if it is larger."""
        remaining = MAX_WORK - self._work
        try:
            return self.expanded(value, remaining)
        except _Budget:
            return remaining + 1

    def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        self._charge(1)
        return super().visit(node, *args, **kwargs)

    def visit_flatten(self, node: Any, value: Any) -> Any:
        # Charged before it is built: n copies of a long list flatten to n times its length.
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        self._charge(sum(len(e) if isinstance(e, list) else 1 for e in base))
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    def visit_function_expression(self, node: Any, value: Any) -> Any:
        args = [self.visit(child, value) for child in node["children"]]
        name = node["value"]
        if name in ("to_string", "contains"):  # they walk their arguments whole
            for arg in args:
                self._charge(self._within_budget(arg) if isinstance(arg, list | dict) else 0)
        elif name == "join" and len(args) == 2 and isinstance(args[1], list):
            self._charge(sum(self.expanded(a) for a in args[1] if isinstance(a, str)))
        result = self._calls.call_function(name, args)
        self._charge(len(result) // _CHARS_PER_UNIT if isinstance(result, str) else _length(result))
        return result

    def visit_comparator(self, node: Any, value: Any) -> Any:
        # Comparing costs up to the size of the smaller side; the library then compares the two
        # values already computed (as literals), with its own rules for numbers and booleans.
        left, right = (self.visit(child, value) for child in node["children"])
        if isinstance(left, list | dict) and isinstance(right, list | dict):
            self._charge(min(self._within_budget(left), self._within_budget(right)))
        computed: Any = {**node, "children": [{"type": "literal", "value": v, "children": []} for v in (left, right)]}
        return super().visit_comparator(computed, value)


def _length(value: Any) -> int:
    return len(value) if isinstance(value, list | dict) else 0


def _strip(expression: str) -> str:
    match = _TEMPLATE.fullmatch(expression.strip())
    return (match.group(1) if match else expression).strip()


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """The value of a bare (or `${{ }}`-wrapped) expression; `ExpressionError` if it fails or
    goes over its work budget."""
    parsed = _compiled(_strip(expression))
    interpreter = _BoundedInterpreter()
    try:
        result = interpreter.visit(parsed.parsed, context)
        if _builds(parsed):  # else the result is a piece of the context, whose size is the caller's
            interpreter.expanded(result)  # what the caller will serialise
        return result
    except jmespath.exceptions.JMESPathError as exc:  # e.g. a function given the wrong type
        raise ExpressionError(f"cannot evaluate {expression!r}: {' '.join(str(exc).split())}") from None
    except _Budget:
        raise ExpressionError(
            f"{expression!r} went over its work budget ({MAX_WORK} steps, values of {MAX_VALUE_SIZE} units): "
            "it visits or builds too much; simplify it, or compute the value in a step"
        ) from None
    except RecursionError:  # a value nested deeper than the library can follow (to_string)
        raise ExpressionError(f"cannot evaluate {expression!r}: a value is nested too deep") from None
    except Exception as exc:  # the library raises builtins on some values (`'a' < `1``: TypeError)
        raise ExpressionError(f"cannot evaluate {expression!r}: {type(exc).__name__}: {exc}") from None


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
