"""The lane of a (definition, key) with flow control: at most `limit` runs at once, the other
events waiting in priority then arrival order, or skipped (docs/flow-control.md).

The triggers send each event here by signal-with-start instead of starting its run; the lane
starts the run as a child under the id it would have had anyway, so a run exists once however
often its event is delivered. The lane's state is its history: a crash of any process replays it.
It continues as new when Temporal suggests it, and ends after a while without work; the next
event starts it again. A child's end is awaited on its handle, which does not survive into the
next run: the next run signals each run it carried at once and every 30 s after; a closed run
refuses the signal (its slot frees), a running one takes it as a request to tell the lane when it
ends (`LANE_RUN_ENDED`). Runs of a lane that never continued as new while they ran cost no
signal. Lanes that began before `_CARRIES_RUNS` continue as new only once no child runs, as they
did then.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from worker.throttle import Rate, ThrottleState

with workflow.unsafe.imports_passed_through():
    from schemas.run import (
        LANE_EVENT,
        LANE_PING,
        LANE_QUERY,
        LANE_RESOLVE,
        LANE_RUN_ENDED,
        LANE_WORKFLOW,
        RESOLVED_SIGNAL,
        WORKFLOW_NAME,
        LaneConfig,
        LaneItem,
        LaneResolve,
        LaneState,
        RunState,
    )
    from worker.metrics import LANES, LaneDecision

__all__ = ["HooklineLane"]

#: A lane with nothing waiting or running ends after this long.
IDLE = timedelta(seconds=60)
#: Lanes that began after this decide all the runs they may start at once and start them together
#: (a slot taken as each is decided); older histories replay one start after the other. Either
#: way the throttle counts a start once Temporal confirmed it: later than the run's real start, so
#: its window holds in the runs' own start times too.
_STARTS_TOGETHER = "lane-starts-together"
#: Lanes that began after this resolve a debounced or batched run one event at a time: a
#: resolution drops only its own event from a queued run (the run only once none is left), and a
#: run hears of (or is cancelled by) a resolution once every event in it has resolved. Older
#: histories replay the first resolution of any of its events ending the whole run.
_PER_EVENT = "lane-resolves-collected-per-event"
#: Lanes that began after this continue as new while children run: the runs and what the lane
#: knows of them are carried over, and the next run of the lane signals each at once and every
#: `_CHECK_CARRIED` (a closed run refuses the signal; a running one tells the lane when it
#: ends). Before, a lane whose runs never all ended at once (a long run, events for its key
#: coming all the while) grew its history until Temporal's limits (50 MB, 51,200 events, 10,000
#: signals) refused or ended it.
_CARRIES_RUNS = "lane-carries-runs"
#: Lanes that began after this start a kept run whose event resolved while it waited
#: (`resolved_while_queued: keep`) with the resolution in its request (and still signal it once
#: started, for an interpreter of an earlier version, which does not read it there); hold a
#: resolution that comes while a run is starting until Temporal confirmed the start; count a
#: debounced or batched run's unresolved events from the moment it is decided; and a newer event
#: that replaces what waits (`replace_queued`, `cancel_running`) forgets the resolutions of the
#: runs it replaced only. Before, a kept run that ended first (a short step) never heard of its
#: resolution (with `on_resolved: cancel` its step could start before the cancellation came);
#: one event of a collected run resolving while the run was being started resolved the whole
#: run; and a replacing event forgot the resolution of a run being started.
_RESOLVED_AT_START = "lane-passes-resolution-at-start"
_CHECK_CARRIED = timedelta(seconds=30)
#: The most a lane carries over into its next run (Temporal warns over 512 KB and refuses over 2 MB).
_MAX_CARRY_BYTES = 1_000_000
#: Run ids remembered (a redelivered event is not queued twice), skipped and dropped ones shown.
_SEEN = 5000
_SHOWN = 100


@workflow.defn(name=LANE_WORKFLOW)
class HooklineLane:
    @workflow.init
    def __init__(self, carried: LaneState) -> None:
        # Here, not in `run`: the signal a lane is started with is handled before `run` begins.
        self._config: LaneConfig | None = carried.config
        self._waiting: list[tuple[float, int, LaneItem]] = []
        self._arrivals = 0
        self._running: set[str] = set()
        self._seen: dict[str, None] = {}
        self._skipped: deque[str] = deque(maxlen=_SHOWN)
        self._dropped: deque[str] = deque(maxlen=_SHOWN)
        self._replaced: deque[str] = deque(maxlen=_SHOWN)
        self._cancelled: deque[str] = deque(maxlen=_SHOWN)
        #: Runs to cancel for a newer event (`cancel_running`).
        self._to_cancel: set[str] = set()
        #: When runs were started within the throttle's period, and its bucket (worker/throttle.py).
        self._throttle = ThrottleState(carried.starts, carried.tokens, carried.tokens_at)
        #: Events collected for one debounced or batched run, when the first and the last came,
        #: and which collected run each event went into (its resolution goes there).
        self._collecting: list[LaneItem] = list(carried.collecting)
        self._collecting_since: datetime | None = carried.collecting_since
        self._collecting_last: datetime | None = carried.collecting_last
        self._holder: dict[str, str] = {}
        #: Resolutions for runs that run now, to pass on; of runs never seen, to drop on arrival.
        self._resolutions: list[LaneResolve] = []
        self._resolved_early: dict[str, LaneResolve] = {}
        #: Resolutions of queued events their trigger keeps (`resolved_while_queued: keep`), and of
        #: runs being started, passed on once their run has started. Not carried over: the lane
        #: does not continue as new while it holds one (see `_roll`).
        self._held: dict[str, LaneResolve] = {}
        #: Debounced or batched runs: of a running one, its events not resolved yet (until it ends);
        #: of a queued one its trigger keeps, its events resolved so far (not carried: see `_roll`).
        self._unresolved: dict[str, set[str]] = {}
        self._resolved_members: dict[str, set[str]] = {}
        for item in carried.waiting:
            self._queue(item)
        self._seen = dict.fromkeys(carried.seen)
        # Runs that went on when the last run of the lane continued as new (only lanes that began
        # after `_CARRIES_RUNS` carry any): no handle to await, so `_check_carried` asks them.
        self._carried: set[str] = set(carried.running)
        self._running |= self._carried
        self._unresolved.update({run: set(events) for run, events in carried.unresolved.items()})
        self._holder.update(carried.holders)
        #: Runs whose start Temporal has not confirmed yet (the throttle counts them once it has).
        self._starting: set[str] = set()
        self._carries_runs = False
        self._checked_at: datetime | None = None
        self._fits_for: tuple[int, ...] = ()
        self._fits = True

    @workflow.run
    async def run(self, carried: LaneState) -> None:
        self._carries_runs = workflow.patched(_CARRIES_RUNS)
        while True:
            due = (self._throttled_for(), self._collected_in(), self._carried_check_in())
            wake = min((t for t in due if t is not None), default=IDLE)
            try:
                await workflow.wait_condition(
                    lambda: (
                        bool(self._resolutions or self._to_cancel)
                        or self._startable()
                        or self._roll()
                        or self._collected_in() == timedelta(0)
                    ),
                    timeout=wake,
                )
            except TimeoutError:
                if not (self._running or self._waiting or self._resolutions or self._to_cancel or self._collecting):
                    return  # idle: the next event starts the lane again
            if self._collected_in() == timedelta(0):
                self._queue(self._collected())
            if self._carried_check_in() == timedelta(0):
                await self._check_carried()
            await self._pass_on_resolutions()
            await self._cancel_for_newer()
            if workflow.patched(_STARTS_TOGETHER):
                starting: list[LaneItem] = []
                allowed = self._throttle_allows()
                while self._startable() and (allowed is None or len(starting) < allowed):
                    _, _, item = heapq.heappop(self._waiting)
                    self._running.add(item.run_id)  # its slot, as it is decided
                    starting.append(item)
                # All it may start now, in one workflow task; no decision is made until they
                # are confirmed (each counted by the throttle then, as in the older histories).
                await asyncio.gather(*(self._start(item) for item in starting))
            else:  # a lane whose history began before: one start after the other, as it did then
                while self._startable():
                    _, _, item = heapq.heappop(self._waiting)
                    await self._start(item)
            if self._roll():
                workflow.continue_as_new(self._state(carry=True))

    def _limit(self) -> int | None:
        return self._config.limit if self._config is not None else 1

    def _startable(self) -> bool:
        limit = self._limit()
        if not self._waiting or (limit is not None and len(self._running) >= limit):
            return False
        if not self._carries_runs and workflow.info().is_continue_as_new_suggested():
            return False  # older lanes start nothing more until they have continued as new
        return self._throttled_for() is None

    def _collected_in(self) -> timedelta | None:
        """How long until the events being collected make their run (0: now); None: none are."""
        config = self._config
        if not self._collecting or config is None or self._collecting_since is None:
            return None
        if config.max_events is not None and len(self._collecting) >= config.max_events:
            return timedelta(0)
        now = workflow.now()
        due = []
        if config.max_wait_s is not None:
            due.append(self._collecting_since + timedelta(seconds=config.max_wait_s))
        if config.quiet_s is not None and self._collecting_last is not None:
            due.append(self._collecting_last + timedelta(seconds=config.quiet_s))
        return max(timedelta(0), min(due) - now) if due else None

    def _collected(self) -> LaneItem:
        """The one run of the events collected: the last event's run request with every event,
        under the first event's id in the space of its kind (`:debounce:`, `:batch:`)."""
        items, self._collecting = self._collecting, []
        self._collecting_since = self._collecting_last = None
        first, last = items[0], items[-1]
        kind = last.config.collect or "batch"
        definition, _, rest = first.run_id.partition(":event:")
        run_id = f"{definition}:{kind}:{rest}" if rest else f"{first.run_id}:{kind}"
        for item in items:
            self._holder[item.run_id] = run_id
        while len(self._holder) > _SEEN:
            del self._holder[next(iter(self._holder))]
        members = [(item.run_id, item.request.event) for item in items if item.request.event is not None]
        request = last.request.model_copy(update={"events": [event for _, event in members]})
        priority = min(item.priority for item in items)
        return last.model_copy(
            update={
                "run_id": run_id,
                "request": request,
                "priority": priority,
                "arrived": first.arrived,
                "members": [member for member, _ in members],
            }
        )

    def _rate(self) -> Rate | None:
        config = self._config
        if config is None or config.throttle_limit is None or not config.throttle_period_s:
            return None
        return Rate(config.throttle_limit, config.throttle_period_s, config.throttle_burst)

    def _throttled_for(self) -> timedelta | None:
        """How long until the throttle lets the next run start; None: it does now (or none)."""
        rate = self._rate()
        return self._throttle.wait(rate, workflow.now()) if rate is not None else None

    def _throttled_once_started(self) -> timedelta | None:
        """`_throttled_for`, with the starts Temporal has not confirmed yet counted as made now:
        what the query shows. What waits behind them is held by the throttle, not by a slot
        (confirming takes a workflow task, seconds on a loaded server)."""
        rate = self._rate()
        if rate is None:
            return None
        now = workflow.now()
        counted = ThrottleState(self._throttle.starts, self._throttle.tokens, self._throttle.tokens_at)
        for _ in self._starting:
            counted.take(rate, now)
        return counted.wait(rate, now)

    def _roll(self) -> bool:
        """Continue as new: Temporal suggests it, and no resolution waits for its run to start
        (they are not carried; they start in turn) or to be passed on, nor a cancellation to be
        made. Lanes older than `_CARRIES_RUNS`: also once no child runs."""
        if not workflow.info().is_continue_as_new_suggested() or self._held or self._resolved_members:
            return False
        if self._carries_runs:
            return not (self._resolutions or self._to_cancel) and self._carry_fits()
        return not self._running

    def _carry_fits(self) -> bool:
        """Whether what the lane carries over fits in a workflow input (Temporal refuses one over
        2 MB). A longer queue is worked off first: runs go on starting, and the lane continues as
        new once it fits. Measured again only when what it holds has changed."""
        held = (self._arrivals, len(self._waiting), len(self._collecting), len(self._running), len(self._seen))
        if held != self._fits_for:
            self._fits_for = held
            self._fits = len(self._state(carry=True).model_dump_json()) <= _MAX_CARRY_BYTES
        return self._fits

    def _carried_check_in(self) -> timedelta | None:
        """How long until the carried runs are asked whether they still run (0: now, first thing
        in a run of the lane that carried some); None: none are carried."""
        if not self._carried:
            return None
        if self._checked_at is None:
            return timedelta(0)
        return max(timedelta(0), self._checked_at + _CHECK_CARRIED - workflow.now())

    async def _check_carried(self) -> None:
        """Signal each carried run: one that has ended refuses it, and its slot frees; one that
        runs takes it as a request to tell the lane when it ends (so a run whose lane never
        continued as new costs no signal at all)."""
        self._checked_at = workflow.now()
        for run_id in sorted(self._carried):
            try:
                await workflow.get_external_workflow_handle(run_id).signal(LANE_PING)
            except Exception:
                self._ended(run_id)

    def _ended(self, run_id: str) -> None:
        self._running.discard(run_id)
        self._carried.discard(run_id)
        self._unresolved.pop(run_id, None)

    @workflow.signal(name=LANE_RUN_ENDED)
    def run_ended(self, run_id: str) -> None:
        """A run the lane carried has ended (its last act, after its steps and compensations):
        its slot frees now."""
        self._ended(run_id)

    def _queue(self, item: LaneItem) -> None:
        heapq.heappush(self._waiting, (item.priority, self._arrivals, item))
        self._arrivals += 1

    def _remember(self, run_id: str) -> None:
        self._seen[run_id] = None
        while len(self._seen) > _SEEN:
            del self._seen[next(iter(self._seen))]

    @workflow.signal(name=LANE_EVENT)
    def event(self, item: LaneItem) -> None:
        self._config = item.config  # the latest definition version's limit and mode
        if item.run_id in self._seen:
            self._count("duplicate")
            return  # delivered again (a redelivery, a second replica): it is here already
        self._remember(item.run_id)
        now = workflow.now()
        item = item.model_copy(update={"arrived": now})
        early = self._resolved_early.pop(item.run_id, None)
        # Its resolution came first: it is over already, unless its trigger keeps it and it would
        # wait in the queue (`resolved_while_queued` is about the queue; a collected event that
        # resolves always leaves its collection).
        if early is not None and (item.config.collect is not None or not _keeps_resolved(item)):
            self._dropped.append(item.run_id)
            self._count("dropped")
            return
        limit, mode = self._limit(), item.config.mode
        if mode == "skip" and limit is not None and len(self._running) + len(self._waiting) >= limit:
            self._skipped.append(item.run_id)
            self._count("skipped")
            return
        if item.config.collect is not None:  # one run for many: collected, queued when due
            self._collecting.append(item)
            self._collecting_since = self._collecting_since or now
            self._collecting_last = now
            self._count("debounced" if item.config.collect == "debounce" else "batched")
            if item.config.max_events is not None and len(self._collecting) >= item.config.max_events:
                self._queue(self._collected())  # full: here, as many signals come in one task
            return
        if mode in ("replace_queued", "cancel_running"):  # the newest wins over what waits
            self._replaced.extend(waiting.run_id for _, _, waiting in sorted(self._waiting, key=lambda e: e[:2]))
            self._count("replaced", len(self._waiting))
            if workflow.patched(_RESOLVED_AT_START):  # their runs never start: nothing to tell
                for _, _, replaced in self._waiting:
                    self._held.pop(replaced.run_id, None)
                    self._resolved_members.pop(replaced.run_id, None)
            else:  # the older histories forgot those of the runs being started too
                self._held.clear()
                self._resolved_members.clear()
            self._waiting.clear()
        if mode == "cancel_running":  # ... and over what runs
            self._to_cancel.update(self._running)
        if early is not None:  # kept: it waits its turn, and its run then hears of its resolution
            self._held[item.run_id] = early
        self._queue(item)
        self._count("queued")

    def _count(self, decision: LaneDecision, events: int = 1) -> None:
        """Count a decision as it is made; a replayed history decides nothing new."""
        if self._config is not None and not workflow.unsafe.is_replaying():
            LANES.decided(self._config.definition_id, decision, events)

    @workflow.signal(name=LANE_RESOLVE)
    def resolve(self, resolution: LaneResolve) -> None:
        """The event of `run_id` is over: drop it if it is being collected, or if it waits and its
        trigger does not keep it (`resolved_while_queued`); tell its run if it runs (also the
        debounced or batched run it went into), or once it starts if it was kept."""
        for index, item in enumerate(self._collecting):
            if item.run_id == resolution.run_id:
                del self._collecting[index]
                self._dropped.append(item.run_id)
                self._count("dropped")
                if not self._collecting:
                    self._collecting_since = self._collecting_last = None
                return
        if self._resolve_collected(resolution):
            return
        resolution = resolution.model_copy(update={"run_id": self._holder.get(resolution.run_id, resolution.run_id)})
        for index, (_, _, item) in enumerate(self._waiting):
            if item.run_id == resolution.run_id and _keeps_resolved(item):
                # It starts in turn, then hears of it; a collected run of several hears of the
                # first, as a running run keeps the first it gets.
                self._held.setdefault(item.run_id, resolution)
                return
            if item.run_id == resolution.run_id:
                del self._waiting[index]
                heapq.heapify(self._waiting)
                self._dropped.append(item.run_id)
                self._count("dropped")
                return
        if resolution.run_id in self._starting and workflow.patched(_RESOLVED_AT_START):
            self._held.setdefault(resolution.run_id, resolution)  # passed on once it has started
        elif resolution.run_id in self._running:
            self._resolutions.append(resolution)
        elif resolution.run_id not in self._seen:
            self._resolved_early[resolution.run_id] = resolution  # it overtook its event
            while len(self._resolved_early) > _SHOWN:
                del self._resolved_early[next(iter(self._resolved_early))]

    def _resolve_collected(self, resolution: LaneResolve) -> bool:
        """Resolve one event of a debounced or batched run that waits or runs; False: the event
        is in none (or the lane's history began before `_PER_EVENT`).

        Queued, the event leaves the run (the run is dropped once none is left), unless its trigger
        keeps it (`resolved_while_queued: keep`): then the run starts in turn and hears of the last
        of its events to resolve. Running, the run hears of it (or is cancelled) once all have."""
        event = resolution.run_id
        for index, (priority, arrival, item) in enumerate(self._waiting):
            if event not in item.members:
                continue
            if not workflow.patched(_PER_EVENT):
                return False
            if _keeps_resolved(item):
                resolved = self._resolved_members.setdefault(item.run_id, set())
                resolved.add(event)
                if resolved.issuperset(item.members):
                    self._held.setdefault(item.run_id, resolution.model_copy(update={"run_id": item.run_id}))
                return True
            self._dropped.append(event)
            self._count("dropped")
            left = [(m, e) for m, e in zip(item.members, item.request.events, strict=True) if m != event]
            if not left:
                del self._waiting[index]
                heapq.heapify(self._waiting)
                return True
            events = [e for _, e in left]
            request = item.request.model_copy(update={"events": events, "event": events[-1]})
            # Same place in the queue (the heap's order holds: same priority and arrival).
            self._waiting[index] = (
                priority,
                arrival,
                item.model_copy(update={"request": request, "members": [m for m, _ in left]}),
            )
            return True
        run_id = self._holder.get(event)
        if run_id is None or (unresolved := self._unresolved.get(run_id)) is None:
            return False  # not one it runs (or it ran before `_PER_EVENT`)
        if event in unresolved:  # not again if it resolves twice
            unresolved.discard(event)
            if not unresolved:
                resolution = resolution.model_copy(update={"run_id": run_id})
                if run_id in self._starting:  # counted early: the lane-passes-resolution-at-start patch
                    self._held.setdefault(run_id, resolution)  # passed on once it has started
                else:
                    self._resolutions.append(resolution)
        return True

    @workflow.query(name=LANE_QUERY)
    def state(self) -> LaneState:
        return self._state(carry=False)

    def _state(self, *, carry: bool) -> LaneState:
        waiting = [item for _, _, item in sorted(self._waiting, key=lambda entry: entry[:2])]
        throttled_for = self._throttled_for()
        if throttled_for is None and self._starting and not carry:
            throttled_for = self._throttled_once_started()
        return LaneState(
            config=self._config,
            running=sorted(self._running),
            queued=[item.run_id for item in waiting],
            skipped=list(self._skipped),
            dropped=list(self._dropped),
            replaced=list(self._replaced),
            cancelled=list(self._cancelled),
            starts=list(self._throttle.starts) if carry else [],
            tokens=self._throttle.tokens,
            tokens_at=self._throttle.tokens_at,
            throttled_until=workflow.now() + throttled_for if throttled_for is not None else None,
            collecting=list(self._collecting) if carry else [],
            collected=[item.run_id for item in self._collecting],
            collecting_since=self._collecting_since,
            collecting_last=self._collecting_last,
            seen=list(self._seen) if carry else [],
            waiting=waiting if carry else [],
            unresolved={run: sorted(events) for run, events in self._unresolved.items()} if carry else {},
            holders={event: run for event, run in self._holder.items() if run in self._running} if carry else {},
        )

    def _throttle_allows(self) -> int | None:
        """How many runs the throttle lets start now (None: it sets no bound)."""
        rate = self._rate()
        return self._throttle.allowance(rate, workflow.now()) if rate is not None else None

    async def _start(self, item: LaneItem) -> None:
        """Start `item`'s run as a child, hold its slot (taken as it was decided, or now in the
        older histories) and count it with the throttle once Temporal confirmed the start, and free
        the slot when the run ends."""
        decided = workflow.now()
        attributes = TypedSearchAttributes(
            [SearchAttributePair(SearchAttributeKey.for_keyword(k), v) for k, v in sorted(item.attributes.items())]
        )
        request = item.request
        if self._carries_runs:  # it tells the lane when it ends (its handle may not outlive us)
            request = request.model_copy(update={"lane": workflow.info().workflow_id})
        told = self._held.get(item.run_id)
        if told is not None and workflow.patched(_RESOLVED_AT_START):
            request = request.model_copy(update={"resolved": told.resolved})
        # A collected run's events still unresolved, from now on: one that resolves while the run
        # is being started counts as for a running run (the older histories count once started).
        # (This patch asked first: an older history does not meet `_PER_EVENT` before its start.)
        counted = bool(item.members) and workflow.patched(_RESOLVED_AT_START) and workflow.patched(_PER_EVENT)
        if counted:
            self._unresolved[item.run_id] = set(item.members) - self._resolved_members.pop(item.run_id, set())
        self._starting.add(item.run_id)
        try:
            handle = await workflow.start_child_workflow(
                WORKFLOW_NAME,
                request,
                id=item.run_id,
                task_queue=workflow.info().task_queue,
                result_type=RunState,
                parent_close_policy=ParentClosePolicy.ABANDON,
                task_timeout=timedelta(seconds=item.task_timeout_s) if item.task_timeout_s else None,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=attributes,
            )
        except WorkflowAlreadyStartedError:  # it ran before: nothing to wait for
            self._running.discard(item.run_id)
            self._held.pop(item.run_id, None)
            self._resolved_members.pop(item.run_id, None)
            self._unresolved.pop(item.run_id, None)
            return
        finally:
            self._starting.discard(item.run_id)
        self._running.add(item.run_id)
        if item.members and not counted and workflow.patched(_PER_EVENT):
            # Until it ends (empty once all have resolved: the held resolution tells it, below).
            self._unresolved[item.run_id] = set(item.members) - self._resolved_members.pop(item.run_id, set())
        if (held := self._held.pop(item.run_id, None)) is not None:
            # Passed on as any running run's (`run`'s next turn): one that came as it started, or
            # the one it began with again (the cancellation follows a `cancel`; the run keeps the
            # first it had, and an interpreter of an earlier version hears of it only so).
            self._resolutions.append(held)
        rate = self._rate()
        if rate is not None:
            self._throttle.take(rate, workflow.now())
        if not workflow.unsafe.is_replaying():
            waited = (decided - item.arrived).total_seconds() if item.arrived is not None else 0.0
            LANES.started(item.config.definition_id, item.config.collect or "single", waited)
        workflow.logger.info("lane started a run", extra={"run_id": item.run_id})

        async def watch() -> None:
            try:
                await handle
            except Exception:  # noqa: S110 - a failed or cancelled run frees its slot like a finished one
                pass
            finally:
                self._ended(item.run_id)

        asyncio.get_running_loop().create_task(watch())

    async def _cancel_for_newer(self) -> None:
        """Cancel the runs a newer event displaced (`cancel_running`); their compensation runs,
        and their slot frees when they end."""
        pending, self._to_cancel = sorted(self._to_cancel & self._running), set()
        for run_id in pending:
            try:
                await workflow.get_external_workflow_handle(run_id).cancel()
                self._cancelled.append(run_id)
                self._count("cancelled")
            except Exception:  # noqa: S110 - it ended meanwhile: nothing to cancel
                pass

    async def _pass_on_resolutions(self) -> None:
        pending, self._resolutions = self._resolutions, []
        for resolution in pending:
            run = workflow.get_external_workflow_handle(resolution.run_id)
            try:
                await run.signal(RESOLVED_SIGNAL, resolution.resolved)
                if resolution.resolved.action == "cancel":
                    await run.cancel()
            except Exception:  # noqa: S110 - the run ended meanwhile: nothing to tell
                pass


def _keeps_resolved(item: LaneItem) -> bool:
    """Whether a queued event that resolves stays queued: its definition version (the one it was
    queued under) says `resolved_while_queued: keep` on a trigger with flow control. A lane serves
    all of a definition's triggers whose key gives the same, so one such trigger keeps them."""
    return any(trigger.keeps_resolved for trigger in item.request.definition.triggers)
