"""`tests.stack_paths.may_need_stack`: a `pytest -n N` session starts the shared Kafka and
Temporal only when its paths may hold a test that uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack_paths import may_need_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "needed"),
    [
        ([], True),  # testpaths: everything
        (["tests"], True),
        (["."], True),
        (["tests/unit"], False),
        (["tests/unit/test_answers.py::test_the_answer_reads_as_a_response"], False),
        (["tests/unit", "tests/deploy"], False),
        (["tests/unit", "tests/integration/test_record_sender.py"], True),
        (["tests/integration/test_record_sender.py::test_x"], True),
        (["tests/drill"], True),
        (["tests/cluster"], True),
        (["tests.integration.test_record_sender"], True),  # --pyargs: a module, not a path
    ],
)
def test_a_session_needs_the_stack_only_where_its_paths_may_hold_stack_tests(args: list[str], needed: bool) -> None:
    assert may_need_stack(args, ROOT) is needed


def test_paths_are_taken_from_where_pytest_was_invoked() -> None:
    assert may_need_stack(["unit"], ROOT / "tests") is False
    assert may_need_stack(["integration"], ROOT / "tests") is True
