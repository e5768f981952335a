"""Events for waiting runs (docs/waiting-steps.md): every event that a `wait_for` step of a
definition in force waits for (its source, its filter) goes to the mailbox of the step's
correlation key, where the runs waiting for it meet it (`worker.waitbox`).

The triggers do this for every event they consume, beside starting what it matches, and before
its offset is committed: an event is brought to the mailbox at least once, and the mailbox passes
it on once (it remembers the ids it has had). Nothing here knows which runs wait: that is the
mailbox's to know, so an event that comes before a run begins waiting (its lookback) or while it
registers is not lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from hookline.definitions import StoredDefinition
from hookline.matching import failure
from hookline.runs import waits_id
from hookline.settings import TemporalSettings
from hookline.temporal import SA_DEFINITION, SA_TEAM
from schemas.events import Event
from schemas.expressions import ExpressionError
from schemas.filters import event_context
from schemas.run import WAITS_ARRIVAL, WAITS_WORKFLOW, WaitArrival, WaitBox
from schemas.workflow import WaitFor
from triggers.errors import Unprocessable

__all__ = ["WaitDelivery", "WaitIndex", "WaitSpec"]

T = TypeVar("T")
#: `call()` for the workflow id, retried while Temporal is unreachable (the starter's retry).
Retrying = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class WaitSpec:
    """A `wait_for` step of a definition in force."""

    stored: StoredDefinition
    step: str
    spec: WaitFor


class WaitIndex:
    """The `wait_for` steps of the definitions in force, by the source they wait on."""

    def __init__(self, definitions: Iterable[StoredDefinition]) -> None:
        self._by_source: dict[str, list[WaitSpec]] = defaultdict(list)
        for stored in definitions:
            for step in stored.definition.all_steps():
                if step.wait_for is not None:
                    self._by_source[step.wait_for.source_name].append(WaitSpec(stored, step.name, step.wait_for))

    def topics(self) -> set[str]:
        """The Kafka topics `wait_for` steps name (the triggers consume them)."""
        return {spec.spec.topic for specs in self._by_source.values() for spec in specs if spec.spec.topic}

    def waiting_for(self, event: Event) -> list[tuple[WaitSpec, dict[str, Any]]]:
        """The steps `event` is for (their source, their filter), with the context their
        correlation is evaluated over. A filter that fails is the step's fault: it is listed, and
        its delivery fails with the reason (`WaitDelivery.deliver`)."""
        specs = self._by_source.get(event.hooklinesource)
        if not specs:
            return []
        context = event_context(event.model_dump(mode="json"))
        chosen = []
        for spec in specs:
            try:
                passes = spec.spec.compiled_filter.passes(context)
            except Exception:  # listed: its delivery evaluates it again and says why
                passes = True
            if passes:
                chosen.append((spec, context))
        return chosen


class WaitDelivery:
    """Brings events to mailboxes: signal-with-start, so a mailbox that ended starts again."""

    def __init__(self, client: Client, settings: TemporalSettings, retrying: Retrying) -> None:
        self._client = client
        self._settings = settings
        self._retrying = retrying

    async def deliver(self, event: Event, accepted_at: datetime, spec: WaitSpec, context: dict[str, Any]) -> str:
        """Bring `event` to its mailbox for `spec`; its id. Raises `Unprocessable` for what
        can never be delivered (the correlation fails on this event, Temporal refuses)."""
        stored = spec.stored
        try:
            spec.spec.compiled_filter.passes(context)
            key = spec.spec.event_key(context)
        except (ExpressionError, ValueError, TypeError) as exc:
            raise Unprocessable(f"definition {stored.id} v{stored.version} step {spec.step!r}: {exc}") from exc
        except Exception as exc:  # a filter failing in a way no one planned for
            raise Unprocessable(
                f"definition {stored.id} v{stored.version} step {spec.step!r}: the filter failed: {failure(exc)}"
            ) from exc
        box = waits_id(stored.id, spec.step, key)
        arrival = WaitArrival(event=event, at=accepted_at, keep_s=spec.spec.lookback)
        attributes = TypedSearchAttributes(
            [SearchAttributePair(SA_DEFINITION, stored.id), SearchAttributePair(SA_TEAM, stored.definition.team)]
        )
        await self._retrying(
            box,
            lambda: self._client.start_workflow(
                WAITS_WORKFLOW,
                WaitBox(definition_id=stored.id, step=spec.step, key=key),
                id=box,
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=attributes,
                start_signal=WAITS_ARRIVAL,
                start_signal_args=[arrival],
            ),
        )
        return box
