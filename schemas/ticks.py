"""Schedule ticks: the event a slot of a `schedule` trigger becomes, whoever ticks it (the
triggers' in-process ticker, or an external scheduler through the gateway's `/ticks`).

The same slot always has the same dedupe key, `schedule-<trigger index>-<slot, UTC>`, so any
number of tickers start one run per slot. The event's subject names the schedule,
`<definition id>#<trigger index>`, which is how the triggers find the trigger it belongs to.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from croniter import croniter
from croniter.croniter import CroniterError

from schemas.events import Event, new_event_id

__all__ = ["TICK_SOURCE", "TICK_TYPE", "cron_error", "schedule_id", "tick_event"]

TICK_TYPE = "dev.hookline.schedule.tick"
TICK_SOURCE = "schedule"


#: How far ahead a schedule must fire: croniter's own search bound, which the ticker uses too.
#: Real calendars repeat well within it (a fifth Monday of February comes every 28 years or so).
FIRES_WITHIN_YEARS = 50
# A fixed instant, so whether a definition is valid does not depend on when it is parsed.
_REFERENCE = datetime(2000, 1, 1)


def cron_error(cron: str, zone: tzinfo) -> str | None:
    """Why `cron` cannot drive a schedule in time zone `zone` (None when it can): it does not
    parse, or no time matches it (the 30th of February)."""
    if not croniter.is_valid(cron, second_at_beginning=True):
        return f"{cron!r} is not a cron expression (5 fields, or 6 with seconds first)"
    try:
        croniter(
            cron,
            _REFERENCE.replace(tzinfo=zone),
            second_at_beginning=True,
            max_years_between_matches=FIRES_WITHIN_YEARS,
        ).get_next(datetime)
    except (CroniterError, ValueError, OverflowError):
        return (
            f"{cron!r} never fires: no time matches it within {FIRES_WITHIN_YEARS} years "
            "(a day the month does not have, such as the 30th of February?); check its day and month fields"
        )
    return None


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
