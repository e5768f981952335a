"""Which definitions an event starts.

Triggers are indexed by source first, then by one equality matcher each (`alertname="X"`, or a
regex of literal alternatives such as `service=~"checkout|payments"`), so
the cost of matching an event grows with the definitions that could match it, not with all of
them: an event looks up its own value at each indexed path, and only those candidates (plus the
few triggers without an equality matcher) have their whole filter evaluated.

A definition whose filter fails in a way no one planned for fails alone: it comes back as a
match with an `error` (its record goes to the DLQ for that definition), and the others match
as if it were not there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from hookline.definitions import StoredDefinition
from hookline.runs import workflow_id_for
from schemas.decisions import snapshot_id
from schemas.events import Event
from schemas.expressions import ExpressionError, render
from schemas.filters import as_text, event_context, lookup
from schemas.workflow import Trigger

__all__ = ["Match", "TriggerIndex", "explain", "failure", "trigger_input"]


@dataclass(frozen=True, slots=True)
class Match:
    stored: StoredDefinition
    trigger: Trigger
    #: Set when evaluating the definition's filter failed: the reason, for the DLQ.
    error: str | None = None


def failure(exc: BaseException) -> str:
    """An unexpected exception in words (type and message), for a DLQ reason or an answer."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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


def _bucket_key(stored: StoredDefinition, index: int, trigger: Trigger) -> str | None:
    if trigger.type == "webhook":
        return trigger.source
    if trigger.type == "kafka":
        return f"kafka:{trigger.topic}"  # records of external topics come in as source kafka:<topic>
    if trigger.type == "schedule":
        return f"schedule:{stored.id}#{index}"  # ticks name their schedule in `subject`
    return None


def _event_key(event: Event) -> str:
    return f"schedule:{event.subject}" if event.hooklinesource == "schedule" else event.hooklinesource


def trigger_input(trigger: Trigger, event: Event) -> dict[str, Any]:
    """The start input: the trigger's `input` mapping rendered over the event, or the event's data."""
    if trigger.input is None:
        return event.data
    rendered = render(trigger.input, event_context(event.model_dump(mode="json")))
    if not isinstance(rendered, dict):
        raise ExpressionError(f"the trigger's input must render to an object, got {type(rendered).__name__}")
    return rendered


class TriggerIndex:
    def __init__(self, definitions: Iterable[StoredDefinition]) -> None:
        self._by_source: dict[str, _Bucket] = defaultdict(_Bucket)
        self._teams: dict[str, set[str]] = defaultdict(set)
        #: The versions in force, by definition id: what a decision names (`schemas.decisions`).
        self.versions: dict[str, int] = {}
        for stored in definitions:
            self.versions[stored.id] = stored.version
            for index, trigger in enumerate(stored.definition.triggers):
                if (key := _bucket_key(stored, index, trigger)) is not None:
                    self._teams[key].add(stored.definition.team)
                    try:
                        self._by_source[key].add(Match(stored, trigger))
                    except Exception:  # its filter fails: scanned, where it fails for itself alone
                        self._by_source[key].scan.append(Match(stored, trigger))

    @cached_property
    def snapshot(self) -> str:
        """The id of `versions` (`schemas.decisions.snapshot_id`): once per index, not per event."""
        return snapshot_id(self.versions)

    def teams(self, event: Event) -> list[str]:
        """The teams with a definition listening to `event`'s source: who may see its decision."""
        return sorted(self._teams.get(_event_key(event), ()))

    def matches(self, event: Event) -> list[Match]:
        """One match per definition (its first trigger that passes, or the first that failed to
        evaluate, with its `error`), in definition id order."""
        bucket = self._by_source.get(_event_key(event))
        if bucket is None:
            return []
        context = event_context(event.model_dump(mode="json"))
        chosen: dict[str, Match] = {}
        for match in bucket.candidates(context):
            if match.stored.id in chosen:
                continue
            try:
                passes = match.trigger.compiled_filter.passes(context)
            except Exception as exc:  # one definition's fault is its own, never the record's
                chosen[match.stored.id] = Match(match.stored, match.trigger, f"the filter failed: {failure(exc)}")
                continue
            if passes:
                chosen[match.stored.id] = match
        return [chosen[k] for k in sorted(chosen)]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Whether an event would start a definition, why not, and with which input and id."""

    definition_id: str
    version: int
    reason: str | None
    input: dict[str, Any] | None = None
    workflow_id: str | None = None
    on_resolved: str | None = None
    #: The flow control the event would meet: its lane's key, limit and mode, and its priority.
    flow_control: dict[str, Any] | None = None

    @property
    def matches(self) -> bool:
        return self.reason is None


def explain(definitions: Iterable[StoredDefinition], event: Event) -> list[Explanation]:
    """For each definition: does `event` start it, and if not, the first failed condition of
    each trigger. Starts nothing."""
    context = event_context(event.model_dump(mode="json"))
    answers: list[Explanation] = []
    for stored in sorted(definitions, key=lambda d: d.id):
        try:
            answers.append(_explain_one(stored, event, context))
        except Exception as exc:  # one definition's fault is its own row, never the request's
            answers.append(Explanation(stored.id, stored.version, f"cannot be evaluated: {failure(exc)}"))
    return answers


def _explain_one(stored: StoredDefinition, event: Event, context: dict[str, Any]) -> Explanation:
    reasons = []
    for index, trigger in enumerate(stored.definition.triggers):
        key = _bucket_key(stored, index, trigger)
        if key is None:
            reasons.append(f"{trigger.type} trigger")
        elif key != _event_key(event):
            reasons.append(f"source is {_event_key(event)!r}, not {key!r}")
        elif (why := trigger.compiled_filter.explain(context)) is not None:
            reasons.append(why)
        else:
            return _would_start(stored, trigger, event)
    return Explanation(stored.id, stored.version, "; ".join(reasons) or "no trigger")


def _would_start(stored: StoredDefinition, trigger: Trigger, event: Event) -> Explanation:
    try:
        run_input = stored.definition.checked_input(trigger_input(trigger, event))
        flow_control = _flow_control(trigger, event)
    except (ExpressionError, ValueError) as exc:
        return Explanation(stored.id, stored.version, f"matches, but the run could not start: {exc}")
    except Exception as exc:  # what the triggers would dead-letter for this definition
        return Explanation(stored.id, stored.version, f"matches, but the run could not start: {failure(exc)}")
    key = event.resolves if event.resolves and trigger.on_resolved in ("signal", "cancel") else event.dedupekey
    return Explanation(
        stored.id,
        stored.version,
        None,
        run_input,
        workflow_id_for(stored.id, event, key),
        trigger.on_resolved if event.resolves else None,
        flow_control,
    )


def _flow_control(trigger: Trigger, event: Event) -> dict[str, Any] | None:
    """The lane an event would wait in (docs/flow-control.md); None without flow control."""
    if not trigger.flow_controlled:
        return None
    context = event_context(event.model_dump(mode="json"))
    key = trigger.lane_key
    lane_key = "" if key is None else render(key, context)
    answer: dict[str, Any] = {
        "key": lane_key if isinstance(lane_key, str) else str(lane_key),
        "priority": render(trigger.priority, context) if trigger.priority is not None else 0,
    }
    if trigger.concurrency is not None:
        answer |= {"limit": trigger.concurrency.limit, "mode": trigger.concurrency.mode}
    if trigger.throttle is not None:
        throttle = trigger.throttle
        answer["throttle"] = {"limit": throttle.limit, "period_s": throttle.period, "burst": throttle.burst}
    if trigger.debounce is not None:
        answer["debounce"] = {"period_s": trigger.debounce.period, "max_wait_s": trigger.debounce.max_wait}
    if trigger.batch is not None:
        answer["batch"] = {"max_events": trigger.batch.max_events, "max_wait_s": trigger.batch.max_wait}
    return answer
