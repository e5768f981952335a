"""What the triggers decided for each event: the record they write to `<prefix>.decisions`.

The triggers write one record per event they handled, before they commit its offset, so a
decision is as durable as the event's handling: a crash before the write leaves the event
uncommitted, and its redelivery writes the decision again. Records are keyed by event id, so a
redelivery or a DLQ replay of the same event is the same key; readers merge them
(`Decision.merged`), never count them twice.

A decision names the definitions it evaluated by a snapshot id: the set of definition versions
in force when it was made. The snapshot itself is written once, before the first decision that
names it, as a record keyed `snapshot:<id>`. A reader that wants to know why a definition did
*not* match evaluates that definition's version from the snapshot, not today's version.

The event travels in the record in Kafka's binary form (its `ce_*` headers and its data as
JSON), so a reader decodes it with `Event.from_kafka`, the same code the triggers used.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from schemas.events import Event

__all__ = [
    "SNAPSHOT_PREFIX",
    "Decision",
    "DecisionRow",
    "Outcome",
    "Snapshot",
    "snapshot_id",
]

#: The key prefix of a snapshot record on the decisions topic.
SNAPSHOT_PREFIX = "snapshot:"

#: What became of one matching definition: the run was started, already existed (a redelivery,
#: or the same occurrence sent twice), was signalled or cancelled by a resolving event, had
#: already ended, was ignored by `on_resolved: ignore`, went to its lane to wait for its turn
#: (flow control: docs/flow-control.md), or the event went to the DLQ for it.
Outcome = Literal[
    "started", "existing", "signalled", "cancelled", "already ended", "ignored", "queued", "dead-lettered"
]


class DecisionRow(BaseModel):
    """One definition the event matched, and what came of it."""

    model_config = ConfigDict(frozen=True)

    definition_id: str
    version: int
    team: str
    outcome: Outcome
    workflow_id: str | None = None
    #: Why the event was dead-lettered for this definition.
    reason: str | None = None


class Decision(BaseModel):
    """The triggers' account of one event."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    #: The configured source (`hooklinesource`), or the CloudEvent's `source` without one.
    source: str
    type: str
    subject: str | None = None
    #: The record the event was read from.
    topic: str
    partition: int
    offset: int
    #: When Kafka took the record (the gateway's acknowledgement), when the triggers read it,
    #: and when they had started (or dead-lettered) everything it matched.
    accepted_at: datetime
    consumed_at: datetime
    decided_at: datetime
    #: The teams that had a definition listening to the event's source then: who may see it.
    teams: list[str]
    #: The definition versions in force then (`Snapshot`).
    snapshot: str
    matched: list[DecisionRow]
    #: A DLQ replay: `matched` covers the replayed definitions only.
    replay: bool = False
    #: The event in Kafka's binary form: its headers (name, text) and its data.
    headers: list[tuple[str, str]]
    data: Any
    #: The size of the event's data when this record left it out (`data` is then {}): with it
    #: the decision was larger than Kafka takes. The data stays in the record the event was read
    #: from (`topic`, `partition`, `offset`) for as long as that topic keeps it.
    data_omitted: int | None = None

    def event(self) -> Event:
        """The event as the triggers decoded it (without its data when `data_omitted`)."""
        return Event.from_kafka(orjson.dumps(self.data), [(k, v.encode()) for k, v in self.headers])

    def matched_teams(self) -> set[str]:
        return {row.team for row in self.matched}

    def merged(self, later: Decision) -> Decision:
        """This decision with a later record of the same event (a redelivery or a replay): its
        rows replace ours of the same definition; the event was first consumed when we say, and
        decided when it says."""
        rows = {row.definition_id: row for row in self.matched}
        for row in later.matched:
            if not (row.outcome == "existing" and rows.get(row.definition_id, row).outcome == "started"):
                rows[row.definition_id] = row  # a redelivery finds the run the first delivery started
        return self.model_copy(
            update={
                "matched": [rows[k] for k in sorted(rows)],
                "decided_at": max(self.decided_at, later.decided_at),
                "teams": sorted(set(self.teams) | set(later.teams)),
                "snapshot": self.snapshot if later.replay else later.snapshot,
            }
        )

    @staticmethod
    def encode(
        event: Event,
        value: bytes,
        headers: list[tuple[str, bytes]],
        *,
        topic: str,
        partition: int,
        offset: int,
        accepted_at: datetime,
        consumed_at: datetime,
        decided_at: datetime,
        teams: list[str],
        snapshot: str,
        matched: list[DecisionRow],
        replay: bool,
        omit_data: bool = False,
    ) -> bytes:
        """The record value, built without a model on the triggers' path: the event's data is
        spliced in as the JSON it already is (with `omit_data`, left out: `data_omitted`)."""
        omitted = {"data_omitted": len(value or b"")} if omit_data else {}
        return orjson.dumps(
            {
                "event_id": event.id,
                "source": event.hooklinesource or event.source,
                "type": event.type,
                "subject": event.subject,
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "accepted_at": accepted_at,
                "consumed_at": consumed_at,
                "decided_at": decided_at,
                "teams": teams,
                "snapshot": snapshot,
                "matched": [row.model_dump() for row in matched],
                "replay": replay,
                "headers": [(k, v.decode(errors="replace")) for k, v in headers],
                "data": orjson.Fragment(b"{}" if omit_data else value or b"{}"),
                **omitted,
            }
        )


class Snapshot(BaseModel):
    """The definition versions in force at some moment, by definition id."""

    model_config = ConfigDict(frozen=True)

    id: str
    versions: dict[str, int]


def snapshot_id(versions: dict[str, int]) -> str:
    """A content digest: the same versions in force give the same id in every process."""
    text = orjson.dumps(versions, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:20]
