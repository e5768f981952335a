"""Hostile-author benchmark: the worst regexes and JMESPath expressions we know of, timed where
Hookline runs them, beside a normal matcher or expression as the baseline.

Regexes are filter matchers (`label=~"..."`) and `inputs` patterns, matched against a 10 KB
label; with RE2 each takes time linear in the label. Python's backtracking `re` is shown on a
26-character label only, for scale: on 10 KB it would not finish. Expressions: one whose value
doubles at each of 64 steps (refused when the definition is saved), and the deepest one that is
accepted (stopped by the work budget when evaluated).

    .venv/bin/python bench/hostile.py [--repeat 20]

Target: every hostile case under 10 ms.
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas.expressions import MAX_EXPRESSION_DEPTH, ExpressionError, evaluate, expression_errors  # noqa: E402
from schemas.filters import parse_matcher  # noqa: E402
from schemas.workflow import DefinitionError, parse_definition  # noqa: E402

LABEL = "a" * 10_000 + "!"  # 10 KB, and no match at the very end: the worst case for backtracking
REGEXES = {
    "nested quantifier (a+)+$": "(a+)+$",
    "overlapping alternatives (a|aa)+$": "(a|aa)+$",
    "same alternative twice (a|a)*b": "(a|a)*b",
    "star of star (a*)*b": "(a*)*b",
    "repeated group (.*a){20}": "(.*a){20}",
    "e-mail style ^([a-zA-Z0-9])(([-.]|[_]+)?([a-zA-Z0-9]+))*(@)": "^([a-zA-Z0-9])(([-.]|[_]+)?([a-zA-Z0-9]+))*(@)",
}
CONTEXT: dict[str, Any] = {"data": {"alerts": [{"labels": {"severity": "critical"}}] * 5}, "input": {"n": 1}}


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of `repeat` runs."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def doubling(levels: int) -> str:
    return " | ".join(["[@, @][]"] * levels)


def failing(fn: Callable[[], object], error: type[Exception]) -> Callable[[], object]:
    def run() -> object:
        try:
            return fn()
        except error as exc:
            return exc

    return run


def row(what: str, ms: float, note: str = "") -> None:
    print(f"  {what:<62} {ms:9.3f} ms  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    repeat = parser.parse_args().repeat
    context = {"labels": {"service": LABEL}}

    print(f"Filter matchers, 10 KB label (RE2), median of {repeat}:")
    baseline = parse_matcher('service=~"checkout|payments"')
    row('baseline service=~"checkout|payments"', timed(lambda: baseline.holds(context), repeat))
    row(
        'baseline service="checkout" (no regex)',
        timed(lambda: parse_matcher('service="checkout"').holds(context), repeat),
    )
    for name, pattern in REGEXES.items():
        matcher = parse_matcher(f'service=~"{pattern}"')
        row(name, timed(functools.partial(matcher.holds, context), repeat))

    print("\ninputs patterns, 10 KB value (RE2 inside jsonschema):")
    plain = parse_definition({"name": "b", "inputs": {"properties": {"x": {"type": "string", "pattern": "^a"}}}})
    row("baseline pattern ^a", timed(lambda: plain.checked_input({"x": LABEL}), repeat))
    for name, pattern in REGEXES.items():
        definition = parse_definition(
            {"name": "h", "inputs": {"properties": {"x": {"type": "string", "pattern": pattern}}}}
        )
        row(name, timed(failing(functools.partial(definition.checked_input, {"x": LABEL}), DefinitionError), repeat))

    print("\nPython's re (backtracking), 26-character label, for scale (1 run):")
    short = "a" * 26 + "!"
    for name in ("nested quantifier (a+)+$", "overlapping alternatives (a|aa)+$"):
        regex = re.compile(REGEXES[name])
        row(name, timed(functools.partial(regex.fullmatch, short), 1), "(10 KB would not finish)")

    print("\nJMESPath:")
    row("baseline length(data.alerts) > `0`", timed(lambda: evaluate("length(data.alerts) > `0`", CONTEXT), repeat))
    row(
        "baseline data.alerts[?labels.severity=='critical'] | length(@)",
        timed(lambda: evaluate("data.alerts[?labels.severity=='critical'] | length(@)", CONTEXT), repeat),
    )
    deep = doubling(64)
    errors = expression_errors(deep, "when")
    row(
        "64-deep doubling [@, @][] | ..., checked at save",
        timed(lambda: expression_errors(deep + " ", "when"), 1),
        "refused" if errors else "ACCEPTED",
    )
    levels = MAX_EXPRESSION_DEPTH - 3
    accepted = doubling(levels)
    assert expression_errors(accepted, "when") == []
    for name, expression in {
        f"{levels}-deep doubling [@, @][] | ..., evaluated": accepted,
        f"{levels}-deep [@, @] then to_string(@)": "[@, @]" + " | [@, @]" * (levels - 2) + " | to_string(@)",
        f"{levels}-deep string join('', [@, @])": "'aaaaaaaa'" + " | join('', [@, @])" * (levels - 1),
    }.items():
        outcome = failing(functools.partial(evaluate, expression, CONTEXT), ExpressionError)()
        note = "stopped: work budget" if isinstance(outcome, ExpressionError) else "FINISHED"
        row(name, timed(failing(functools.partial(evaluate, expression, CONTEXT), ExpressionError), repeat), note)


if __name__ == "__main__":
    main()
