"""The mailbox of one `wait_for` correlation key (docs/waiting-steps.md): where the events of a
(definition, step, key) meet the runs waiting for them.

The triggers bring every event that passes the step's source and filter here (signal-with-start,
`WAITS_ARRIVAL`); a run whose `wait_for` begins starts it with itself as a waiter, or registers
(`WAITS_REGISTER`). The meeting is decided by time, not by which message came first: a waiter
gets the earliest event accepted at or after its `since` (the wait's start less its lookback),
whether that event came before it registered (it is kept here for `keep_s`, at least
`MIN_KEEP_S`) or after (it is passed on as it comes). A waiter gets one event and is then
forgotten; it leaves (`WAITS_LEAVE`) when its wait ended otherwise, and is dropped when its run
is gone or past its time. The mailbox ends once it keeps nothing and nobody waits, and continues
as new, carrying both, when Temporal suggests it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.run import (
        WAIT_EVENT_SIGNAL,
        WAITS_ARRIVAL,
        WAITS_LEAVE,
        WAITS_REGISTER,
        WAITS_WORKFLOW,
        WaitArrival,
        WaitBox,
        Waiter,
        WaitMatch,
    )

__all__ = ["MIN_KEEP_S", "HooklineWaits"]

#: Every event is kept at least this long: a run that began waiting just before the event came
#: may register a moment after it (its start of the child, a worker restart), and still gets it.
MIN_KEEP_S = 60.0
#: Events kept at once (the latest), and event ids remembered against redeliveries.
_KEPT = 20
_SEEN = 1000
#: A waiter past its own time is dropped this much later (its run leaves by itself before).
_GRACE = timedelta(seconds=60)


@workflow.defn(name=WAITS_WORKFLOW)
class HooklineWaits:
    @workflow.init
    def __init__(self, box: WaitBox) -> None:
        # Here, not in `run`: the signal it is started with is handled before `run` begins.
        self._box = box.model_copy(update={"waiters": [], "events": []})
        self._waiters: dict[str, Waiter] = {}
        self._events: list[WaitArrival] = list(box.events)
        self._seen = dict.fromkeys(box.seen)
        #: (waiter, event) pairs to pass on, in order.
        self._outbox: list[tuple[str, WaitArrival]] = []
        #: A signal came since the loop last looked.
        self._changed = False
        for waiter in box.waiters:
            self.register(waiter)

    @workflow.run
    async def run(self, box: WaitBox) -> None:
        while True:
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=self._next_expiry())
            except TimeoutError:
                pass
            self._changed = False
            await self._pass_on()
            self._expire()
            if not self._waiters and not self._events and not self._outbox:
                return  # nothing kept, nobody waits: the next event or waiter starts it again
            if workflow.info().is_continue_as_new_suggested() and not self._outbox:
                workflow.continue_as_new(
                    self._box.model_copy(
                        update={
                            "waiters": list(self._waiters.values()),
                            "events": self._events,
                            "seen": list(self._seen),
                        }
                    )
                )

    @workflow.signal(name=WAITS_ARRIVAL)
    def arrival(self, arrival: WaitArrival) -> None:
        self._changed = True
        if arrival.event.id in self._seen:
            return  # delivered again (a redelivery, a DLQ replay): passed on already
        self._seen[arrival.event.id] = None
        while len(self._seen) > _SEEN:
            del self._seen[next(iter(self._seen))]
        keep = arrival.model_copy(update={"keep_s": max(arrival.keep_s, MIN_KEEP_S)})
        self._events = sorted([*self._events, keep], key=lambda e: e.at)[-_KEPT:]
        for run_id, waiter in list(self._waiters.items()):
            if keep.at >= waiter.since:
                self._outbox.append((run_id, keep))
                del self._waiters[run_id]

    @workflow.signal(name=WAITS_REGISTER)
    def register(self, waiter: Waiter) -> None:
        self._changed = True
        earliest = next((e for e in self._events if e.at >= waiter.since), None)
        if earliest is not None:
            self._outbox.append((waiter.run_id, earliest))
            self._waiters.pop(waiter.run_id, None)
        else:
            self._waiters[waiter.run_id] = waiter

    @workflow.signal(name=WAITS_LEAVE)
    def leave(self, run_id: str) -> None:
        self._changed = True
        self._waiters.pop(run_id, None)

    def _next_expiry(self) -> timedelta | None:
        """Until the next kept event or waiter expires; None: nothing will by itself."""
        times: list[datetime] = [e.at + timedelta(seconds=e.keep_s) for e in self._events]
        times += [w.until + _GRACE for w in self._waiters.values() if w.until is not None]
        if not times:
            return None
        return max(min(times) - workflow.now(), timedelta(seconds=1))

    def _expire(self) -> None:
        now = workflow.now()
        self._events = [e for e in self._events if e.at + timedelta(seconds=e.keep_s) > now]
        for run_id, waiter in list(self._waiters.items()):
            if waiter.until is not None and waiter.until + _GRACE <= now:
                del self._waiters[run_id]

    async def _pass_on(self) -> None:
        pending, self._outbox = self._outbox, []
        for run_id, arrival in pending:
            match = WaitMatch(step=self._box.step, key=self._box.key, event=arrival.event, at=arrival.at)
            try:
                await workflow.get_external_workflow_handle(run_id).signal(WAIT_EVENT_SIGNAL, match)
            except Exception:  # noqa: S110 - the run is gone: it waits no more
                pass
