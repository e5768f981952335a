"""Which definitions an event starts: indexed by trigger source, so cost does not grow with
definitions that cannot match."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from hookline.definitions import StoredDefinition
from schemas.events import Event

__all__ = ["TriggerIndex"]


class TriggerIndex:
    """Webhook triggers by source name."""

    def __init__(self, definitions: Iterable[StoredDefinition]) -> None:
        self._by_source: dict[str, list[StoredDefinition]] = defaultdict(list)
        for stored in definitions:
            for trigger in stored.definition.triggers:
                if trigger.type == "webhook" and trigger.source:
                    self._by_source[trigger.source].append(stored)

    def matches(self, event: Event) -> list[StoredDefinition]:
        return list(self._by_source.get(event.hooklinesource, ()))
