"""Every component freezes its start-up heap and collects the young generation less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hookline.cli.common import YOUNG_COLLECTION_THRESHOLD, freeze_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_heap_is_frozen_and_young_collections_are_rarer(restored_gc: None) -> None:
    older = gc.get_threshold()[1:]
    freeze_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *older)
