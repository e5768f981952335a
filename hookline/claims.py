"""Compare-and-set of definition writes made by several processes: claims on the definitions topic.

Each process holds its own view of the definitions topic, so two gateways could each believe they
are the one writing version N+1 of a definition. Before it writes a version (or a deletion), a
writer therefore produces a claim, `<id>@claim` = `{"writer", "base", "version"}`, and reads the
topic back past it. The topic has one partition: every view applies the same claims in the same
order, with the same record timestamps, and so reaches the same verdict. A claim wins when

- its `base` is the version current at that point of the topic (0: none, or deleted),
- its `version` is higher than every version number claimed or stored before it (a deletion
  claims no number), and
- no earlier winning claim is still unsettled (its head not yet written), unless that claim is
  `CLAIM_TTL_MS` older by the records' timestamps: its writer died, and the definition must not
  stay blocked.

Only the winner writes `<id>@v<N>` and the head; a loser writes nothing and is told so. No version
number is given twice, and every write either lands as its own version or is refused, never
dropped in silence. A winner that finds itself past half the TTL before writing gives up rather
than write after its claim could have expired.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

__all__ = ["CLAIM_TTL_MS", "Claim", "Claims"]

#: How long an unsettled winning claim blocks others (by record timestamps).
CLAIM_TTL_MS = 15_000


@dataclass(frozen=True, slots=True)
class Claim:
    writer: str  # a random token of one write attempt
    base: int  # the version the writer saw current; 0 for none
    version: int | None  # the version it will write; None for a deletion

    def encode(self) -> bytes:
        return orjson.dumps({"writer": self.writer, "base": self.base, "version": self.version})

    @classmethod
    def decode(cls, value: bytes) -> Claim:
        raw = orjson.loads(value)
        version = raw["version"]
        return cls(str(raw["writer"]), int(raw["base"]), None if version is None else int(version))


class Claims:
    """The claim state of every definition in one view, fed in topic order."""

    def __init__(self) -> None:
        self._top: dict[str, int] = {}
        #: Definition id → record timestamp of its winning claim whose head is not written yet.
        self._unsettled: dict[str, int] = {}

    def top(self, definition_id: str) -> int:
        """The highest version number claimed or stored for `definition_id`."""
        return self._top.get(definition_id, 0)

    def saw_version(self, definition_id: str, version: int) -> None:
        self._top[definition_id] = max(self.top(definition_id), version)

    def settled(self, definition_id: str) -> None:
        """A head (or a deletion's tombstone) was written: the pending claim, if any, is done."""
        self._unsettled.pop(definition_id, None)

    def judge(self, definition_id: str, claim: Claim, current: int, timestamp_ms: int) -> bool:
        """Whether `claim`, read at this point of the topic with `current` the head's version
        (0: none), wins."""
        pending = self._unsettled.get(definition_id)
        won = (
            claim.base == current
            and (pending is None or timestamp_ms - pending >= CLAIM_TTL_MS)
            and (claim.version is None or claim.version > self.top(definition_id))
        )
        if claim.version is not None:
            self.saw_version(definition_id, claim.version)
        if won:
            self._unsettled[definition_id] = timestamp_ms
        return won
