"""The one regex engine for patterns that authors write (filter matchers, `inputs` patterns):
RE2, whose matching time grows linearly with the text, whatever the pattern. Python's `re`
backtracks, so one pattern such as `(a+)+$` can hold a process for minutes on a short label.

RE2's syntax is Go's, as Alertmanager's own matchers use; it has no backreferences (`\\1`) and no
lookaround (`(?=`, `(?<!`), and a pattern that uses them is refused when it is saved.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import re2

__all__ = ["Regex", "RegexError", "compile_regex"]

#: Memory RE2 may use for one compiled pattern; a larger one (`(a{1000}){1000}`) is refused.
MAX_PROGRAM_BYTES = 1 << 20


class RegexError(ValueError):
    """A pattern RE2 does not accept, with its reason."""


class Regex(Protocol):
    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the reason is raised to the caller, not written to stderr
    options.max_mem = MAX_PROGRAM_BYTES
    # Only "does it match" is ever asked: without capture groups RE2 answers with its DFA, about
    # 30 times faster than when it must also find where each group matched.
    options.never_capture = True
    return options


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Regex:
    """`pattern` compiled with RE2; raises `RegexError` saying why it cannot be."""
    try:
        compiled: Regex = re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(
            f"{pattern!r} is not a regex RE2 accepts ({reason}); RE2 has no backreferences or lookaround"
        ) from None
    return compiled
