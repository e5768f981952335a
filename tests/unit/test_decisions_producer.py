"""The triggers write decision records with a producer that lingers `triggers.decision_linger_ms`
to batch the decisions of concurrent events; the gateway's and the ticker's producers do not."""

from __future__ import annotations

from typing import Any

import pytest

import triggers.app
from hookline.settings import KafkaSettings
from triggers.settings import TriggersOptions, TriggersSettings


@pytest.mark.parametrize("linger_ms", [None, 0, 45])
def test_the_decisions_producer_lingers_as_configured(linger_ms: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[KafkaSettings, dict[str, Any]]] = []
    monkeypatch.setattr(triggers.app, "create_producer", lambda kafka, **overrides: made.append((kafka, overrides)))
    options = TriggersOptions() if linger_ms is None else TriggersOptions(decision_linger_ms=linger_ms)
    settings = TriggersSettings(kafka=KafkaSettings(linger_ms=2), triggers=options)
    triggers.app.decisions_producer(settings)
    assert made == [(settings.kafka, {"linger_ms": 20 if linger_ms is None else linger_ms})]


def test_a_negative_linger_is_refused() -> None:
    with pytest.raises(ValueError, match="decision_linger_ms"):
        TriggersOptions(decision_linger_ms=-1)
