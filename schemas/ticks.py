"""Schedule ticks: the event a slot of a `schedule` trigger becomes, whoever ticks it (the
triggers' in-process ticker, or an external scheduler through the gateway's `/ticks`).

The same slot always has the same dedupe key, `schedule-<trigger index>-<slot, UTC>`, so any
number of tickers start one run per slot. The event's subject names the schedule,
`<definition id>#<trigger index>`, which is how the triggers find the trigger it belongs to.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.events import Event, new_event_id

__all__ = ["TICK_SOURCE", "TICK_TYPE", "schedule_id", "tick_event"]

TICK_TYPE = "dev.hookline.schedule.tick"
TICK_SOURCE = "schedule"


def schedule_id(definition_id: str, index: int) -> str:
    return f"{definition_id}#{index}"


def tick_event(
    definition_id: str, index: int, slot: datetime, *, cron: str | None = None, timezone: str = "UTC"
) -> Event:
    slot = slot.astimezone(UTC)
    name = schedule_id(definition_id, index)
    return Event(
        id=new_event_id(),
        source=f"/schedules/{definition_id}",
        type=TICK_TYPE,
        time=slot,
        subject=name,
        # The year padded by hand: strftime's %Y does not pad years before 1000 on glibc.
        dedupekey=f"schedule-{index}-{slot.year:04d}{slot:%m%dT%H%M%SZ}",
        partitionkey=name,
        hooklinesource=TICK_SOURCE,
        data={
            "schedule": name,
            "definition": definition_id,
            "cron": cron,
            "timezone": timezone,
            "slot": slot.isoformat(),
        },
    )
