"""How a `wait_for` event reaches its runs (docs/waiting-steps.md), the pure parts: which steps
the triggers bring an event to, and the mailbox's rule of who gets which event (by the time the
event was accepted and the time the wait began, whatever order the two messages arrive in). The
whole path runs on the real stack in tests/integration/test_waiting_steps.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hookline.definitions import StoredDefinition
from schemas.events import Event
from schemas.run import WaitArrival, WaitBox, Waiter
from schemas.workflow import parse_definition
from triggers.waits import WaitIndex
from worker.waitbox import MIN_KEEP_S, HooklineWaits

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def stored(steps: list[dict[str, Any]], name: str = "Waits") -> StoredDefinition:
    doc = {"name": name, "steps": steps}
    definition = parse_definition(doc)
    return StoredDefinition(id=definition.id, version=1, digest="", document=doc, definition=definition, created_at="")


def event(event_id: str = "e1", source: str = "alertmanager", **labels: str) -> Event:
    return Event(
        id=event_id,
        source="am",
        type="alert",
        dedupekey=event_id,
        hooklinesource=source,
        data={"alert": {"labels": labels}},
    )


def test_an_event_goes_to_the_wait_for_steps_of_its_source_whose_filter_it_passes() -> None:
    index = WaitIndex(
        [
            stored([{"name": "canary", "wait_for": {"source": "alertmanager", "filter": ['alertname="Canary"']}}], "A"),
            stored([{"name": "any", "wait_for": {"source": "alertmanager"}}], "B"),
            stored([{"name": "gh", "wait_for": {"source": "github"}}], "C"),
            stored([{"name": "plain", "agent": "x"}], "D"),
        ]
    )
    chosen = index.waiting_for(event(alertname="Canary"))
    assert sorted((spec.stored.id, spec.step) for spec, _ in chosen) == [("a", "canary"), ("b", "any")]
    assert [spec.step for spec, _ in index.waiting_for(event(alertname="Other"))] == ["any"]
    assert index.waiting_for(event(source="kafka:deployments")) == []


def test_wait_for_topics_are_consumed() -> None:
    index = WaitIndex([stored([{"name": "deployed", "wait_for": {"topic": "deployments"}}])])
    assert index.topics() == {"deployments"}
    assert [spec.step for spec, _ in index.waiting_for(event(source="kafka:deployments"))] == ["deployed"]


def mailbox(*waiters: Waiter) -> HooklineWaits:
    return HooklineWaits(WaitBox(definition_id="d", step="s", key="k", waiters=list(waiters)))


def arrival(event_id: str, at: datetime, keep_s: float = 0.0) -> WaitArrival:
    return WaitArrival(event=event(event_id), at=at, keep_s=keep_s)


def passed_on(box: HooklineWaits) -> list[tuple[str, str]]:
    return [(run_id, a.event.id) for run_id, a in box._outbox]


def test_a_waiter_gets_an_event_that_arrives_while_it_waits_once() -> None:
    box = mailbox(Waiter(run_id="r1", since=T0))
    box.arrival(arrival("e1", T0 + timedelta(seconds=1)))
    box.arrival(arrival("e2", T0 + timedelta(seconds=2)))
    assert passed_on(box) == [("r1", "e1")]  # one event per wait; the later one is kept for others


def test_every_waiter_of_the_key_gets_the_event() -> None:
    box = mailbox(Waiter(run_id="r1", since=T0), Waiter(run_id="r2", since=T0))
    box.arrival(arrival("e1", T0 + timedelta(seconds=1)))
    assert sorted(passed_on(box)) == [("r1", "e1"), ("r2", "e1")]


def test_a_waiter_that_registers_late_gets_the_earliest_event_since_its_lookback() -> None:
    box = mailbox()
    box.arrival(arrival("old", T0 - timedelta(minutes=10), keep_s=3600))
    box.arrival(arrival("e1", T0 - timedelta(minutes=4), keep_s=3600))
    box.arrival(arrival("e2", T0 - timedelta(minutes=1), keep_s=3600))
    box.register(Waiter(run_id="r1", since=T0 - timedelta(minutes=5)))
    assert passed_on(box) == [("r1", "e1")]


def test_an_event_accepted_after_the_wait_began_counts_even_if_it_reached_the_mailbox_first() -> None:
    box = mailbox()
    box.arrival(arrival("e1", T0 + timedelta(milliseconds=5)))  # no lookback: kept MIN_KEEP_S all the same
    box.register(Waiter(run_id="r1", since=T0))
    assert passed_on(box) == [("r1", "e1")]
    assert box._events[0].keep_s == MIN_KEEP_S


def test_an_event_before_the_wait_outside_its_lookback_is_not_its() -> None:
    box = mailbox()
    box.arrival(arrival("e1", T0 - timedelta(seconds=30)))
    box.register(Waiter(run_id="r1", since=T0))
    assert passed_on(box) == []


def test_a_redelivered_event_is_passed_on_once_and_a_waiter_that_left_gets_nothing() -> None:
    box = mailbox(Waiter(run_id="r1", since=T0), Waiter(run_id="r2", since=T0))
    box.leave("r2")
    box.arrival(arrival("e1", T0 + timedelta(seconds=1)))
    box.register(Waiter(run_id="r3", since=T0))
    box.arrival(arrival("e1", T0 + timedelta(seconds=1)))  # the triggers delivered it again
    assert passed_on(box) == [("r1", "e1"), ("r3", "e1")]
