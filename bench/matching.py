"""Matching benchmark: events/s through the trigger index against 10, 1,000 and 10,000
definitions, with the naive linear scan (every trigger's source and filter checked) beside it.

One process, one core, no I/O: what the triggers service spends per event before any start.
Definitions are realistic: each is triggered by the alertmanager source and filtered on its
own alertname plus a severity regex; one in twenty names alternatives (`=~"a|b"`, indexed under
each), one in two hundred a real regex (cannot be indexed, so it is evaluated for every event).
Events carry random alertnames, a tenth of them one that some definition names.

    .venv/bin/python bench/matching.py [--events 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hookline.definitions import StoredDefinition  # noqa: E402
from hookline.matching import TriggerIndex  # noqa: E402
from schemas.events import Event  # noqa: E402
from schemas.filters import event_context  # noqa: E402
from schemas.workflow import parse_definition  # noqa: E402


def definitions(n: int) -> list[StoredDefinition]:
    out = []
    for i in range(n):
        matchers = (
            [f'alertname=~"Alert{i}|Other{i}"']
            if i % 20 == 0
            else [f'alertname="Alert{i}"', 'severity=~"critical|page"']
        )
        doc: dict[str, Any] = {
            "name": f"Remediate {i}",
            "trigger": {"type": "webhook", "source": "alertmanager", "filter": matchers},
            "steps": [{"name": "fix", "agent": "remediator"}],
        }
        d = parse_definition(doc)
        out.append(StoredDefinition(id=d.id, version=1, digest="", document=doc, definition=d))
    return out


def events(count: int, n_definitions: int, rng: random.Random) -> list[Event]:
    out = []
    for i in range(count):
        name = f"Alert{rng.randrange(n_definitions)}" if i % 10 == 0 else f"Unknown{rng.randrange(10**6)}"
        out.append(
            Event(
                id=str(i),
                source="/hooks/alertmanager",
                type="io.prometheus.alertmanager.alert.firing",
                dedupekey=str(i),
                hooklinesource="alertmanager",
                data={
                    "status": "firing",
                    "alert": {"labels": {"alertname": name, "severity": "critical", "instance": "x:9100"}},
                },
            )
        )
    return out


def linear(defs: list[StoredDefinition], event: Event) -> list[str]:
    """The baseline: look at every trigger of every definition."""
    context = event_context(event.model_dump(mode="json"))
    return sorted(
        d.id
        for d in defs
        if any(
            t.type == "webhook" and t.source == event.hooklinesource and t.compiled_filter.passes(context)
            for t in d.definition.triggers
        )
    )


def rate(fn: Any, evs: list[Event]) -> tuple[float, int]:
    matched = 0
    start = time.perf_counter()
    for e in evs:
        matched += len(fn(e))
    return len(evs) / (time.perf_counter() - start), matched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"{'definitions':>11} {'indexed ev/s':>13} {'linear ev/s':>12} {'speed-up':>9} {'matches':>8}")
    for n in (10, 1000, 10000):
        defs = definitions(n)
        index = TriggerIndex(defs)
        evs = events(args.events, n, rng)
        # The linear scan is slow at 10,000 definitions: give it fewer events, same mix.
        lin_evs = evs[: max(200, args.events * 10 // n)] if n > 100 else evs
        for e in evs[:50]:  # same answers, or the figures mean nothing
            assert [m.stored.id for m in index.matches(e)] == linear(defs, e), e
        indexed, matched = rate(index.matches, evs)
        lin, _ = rate(lambda e, defs=defs: linear(defs, e), lin_evs)
        print(f"{n:>11} {indexed:>13,.0f} {lin:>12,.0f} {indexed / lin:>8.1f}x {matched:>8}")
    print("target: >= 20,000 events/s per core against 1,000 definitions (indexed)")


if __name__ == "__main__":
    main()
