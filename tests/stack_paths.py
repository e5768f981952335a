"""Which test sessions need the shared Kafka and Temporal: decided from the command line's paths,
before anything is collected (pytest-xdist's controller, which starts the stack for its workers,
never collects)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["STACK_FOLDERS", "may_need_stack"]

TESTS = Path(__file__).resolve().parent
#: The folders whose conftests mark their tests `integration` (and `drill`, `cluster`): the only
#: tests that use the stack (tests/conftest.py refuses a stack test outside them unmarked).
STACK_FOLDERS = (TESTS / "integration", TESTS / "drill", TESTS / "cluster")


def may_need_stack(args: Sequence[str], invocation_dir: Path) -> bool:
    """False when every path on the command line lies outside the stack's folders (say
    `pytest -n 2 tests/unit`); True when any may hold a stack test, when none is given, or when
    one is not a path here (`--pyargs` module names)."""
    paths = [(invocation_dir / arg.split("::", 1)[0]).resolve() for arg in args]  # pytest's positional arguments
    if not paths or not all(path.exists() for path in paths):
        return True
    return any(path.is_relative_to(folder) or folder.is_relative_to(path) for path in paths for folder in STACK_FOLDERS)
