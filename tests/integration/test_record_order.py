"""One alert's events reach the starter in the order they were produced (issue 10, class 11).

Many alerts, each posted firing and then resolved, are on Kafka before a triggers service with
room for all of them at once starts. Starting a firing's run is slowed down by a random delay,
so a resolution handled alongside its firing (rather than after it) would reach the starter
first. Real gateway, Kafka, triggers service and Temporal; only the delay is added.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hookline.definitions import DefinitionStore
from tests.conftest import running
from tests.eventually import eventually
from tests.notifications import resolved
from triggers.app import TriggersService

pytestmark = pytest.mark.integration

ALERTS = 40


async def test_a_resolution_reaches_the_starter_only_after_its_firing_was_started(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    triggers_service: Callable[..., TriggersService],
    notification: Callable[..., dict[str, Any]],
) -> None:
    await store.put(
        {
            "name": "Ordered",
            "trigger": {"type": "webhook", "source": "alertmanager", "on_resolved": "signal"},
            "steps": [{"name": "diagnose", "agent": "analyzer"}],
        }
    )
    fingerprints = []
    for _ in range(ALERTS):
        firing = notification(alerts=1)
        fingerprints.append(firing["alerts"][0]["fingerprint"])
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202

    service = triggers_service(concurrency=4 * ALERTS)
    starter = service._starter
    start, resolve = starter.start, starter.resolve
    #: (fingerprint, "start" | "resolve", "begin" | "end", when)
    seen: list[tuple[str, str, str, float]] = []
    chance = random.Random(7)

    async def slow_start(event: Any, *args: Any) -> Any:
        fingerprint = event.partitionkey
        seen.append((fingerprint, "start", "begin", time.monotonic()))
        await asyncio.sleep(chance.uniform(0.0, 0.2))
        result = await start(event, *args)
        seen.append((fingerprint, "start", "end", time.monotonic()))
        return result

    async def noted_resolve(event: Any, *args: Any) -> Any:
        seen.append((event.partitionkey, "resolve", "begin", time.monotonic()))
        return await resolve(event, *args)

    starter.start, starter.resolve = slow_start, noted_resolve  # type: ignore[method-assign]
    async with running(service.run, service.stop):

        def all_resolved() -> bool:
            return sum(1 for _, what, _, _ in seen if what == "resolve") == ALERTS

        await eventually(all_resolved, "every resolution to reach the starter", timeout=30)

    assert {f for f, *_ in seen} == set(fingerprints), "every alert reached the starter"
    overtaken = []
    for fingerprint in fingerprints:
        moments = {(what, when): at for f, what, when, at in seen if f == fingerprint}
        if not moments[("start", "end")] <= moments[("resolve", "begin")]:
            overtaken.append(fingerprint)
    assert overtaken == [], f"{len(overtaken)} of {ALERTS} resolutions reached the starter before their firing"
