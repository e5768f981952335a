"""Which definitions an event starts.

Triggers are indexed by source first, then by one equality matcher each (`alertname="X"`, or a
regex of literal alternatives such as `service=~"checkout|payments"`), so
the cost of matching an event grows with the definitions that could match it, not with all of
them: an event looks up its own value at each indexed path, and only those candidates (plus the
few triggers without an equality matcher) have their whole filter evaluated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hookline.definitions import StoredDefinition
from schemas.events import Event
from schemas.filters import as_text, event_context, lookup
from schemas.workflow import Trigger

__all__ = ["Match", "TriggerIndex", "explain"]


@dataclass(frozen=True, slots=True)
class Match:
    stored: StoredDefinition
    trigger: Trigger


@dataclass(slots=True)
class _Bucket:
    """The triggers of one source: keyed by (path, value) of their equality matcher, or scanned."""

    by_value: dict[tuple[str, ...], dict[str, list[Match]]] = field(default_factory=lambda: defaultdict(dict))
    scan: list[Match] = field(default_factory=list)

    def add(self, match: Match) -> None:
        key = match.trigger.compiled_filter.index_key()
        if key is None:
            self.scan.append(match)
            return
        path, values = key
        for value in values:
            self.by_value[path].setdefault(value, []).append(match)

    def candidates(self, context: dict[str, Any]) -> list[Match]:
        found = list(self.scan)
        for path, values in self.by_value.items():
            found.extend(values.get(as_text(lookup(context, path)), ()))
        return found


def _webhook_triggers(stored: StoredDefinition) -> Iterable[Trigger]:
    return (t for t in stored.definition.triggers if t.type == "webhook" and t.source)


class TriggerIndex:
    def __init__(self, definitions: Iterable[StoredDefinition]) -> None:
        self._by_source: dict[str, _Bucket] = defaultdict(_Bucket)
        for stored in definitions:
            for trigger in _webhook_triggers(stored):
                self._by_source[trigger.source or ""].add(Match(stored, trigger))

    def matches(self, event: Event) -> list[Match]:
        """One match per definition (its first trigger that passes), in definition id order."""
        bucket = self._by_source.get(event.hooklinesource)
        if bucket is None:
            return []
        context = event_context(event.model_dump(mode="json"))
        chosen: dict[str, Match] = {}
        for match in bucket.candidates(context):
            if match.stored.id not in chosen and match.trigger.compiled_filter.passes(context):
                chosen[match.stored.id] = match
        return [chosen[k] for k in sorted(chosen)]


def explain(definitions: Iterable[StoredDefinition], event: Event) -> dict[str, str | None]:
    """Definition id → None if the event would start it, else why not (the first failed condition)."""
    context = event_context(event.model_dump(mode="json"))
    answers: dict[str, str | None] = {}
    for stored in definitions:
        reasons = []
        for trigger in stored.definition.triggers:
            if trigger.type != "webhook":
                reasons.append(f"{trigger.type} trigger")
            elif trigger.source != event.hooklinesource:
                reasons.append(f"source is {event.hooklinesource!r}, not {trigger.source!r}")
            elif (why := trigger.compiled_filter.explain(context)) is not None:
                reasons.append(why)
            else:
                reasons = []
                break
        answers[stored.id] = "; ".join(reasons) if reasons else None
    return answers
