"""Flow control, keyed concurrency (docs/flow-control.md): a storm of alerts for a few services
against `concurrency: {key: service, limit: 1}` never runs two remediations of one service at
once and runs every alert once; `skip`, `priority` and a resolution of a waiting alert do what
they say. Real gateway, Kafka, triggers, lanes and runs on Temporal, and a worker."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client
from temporalio.worker import Replayer

from gateway.sources.alertmanager import alert_dedupe_key
from hookline.definitions import DefinitionStore
from hookline.runs import event_run_id, lane_id
from schemas.agents import Agent, AgentCatalog
from schemas.run import LANE_QUERY, LaneState, RunState
from tests.conftest import EXAMPLES, running
from tests.eventually import eventually
from tests.integration.conftest import runs_of, started_runs, wait_for_result
from tests.integration.test_api_support import API, auth
from tests.notifications import notification
from triggers.app import TriggersService
from worker.lane import HooklineLane

# The first 8 characters of each event id: the step's output kept in its state is its tail.
SHOW_EVENTS = "import json, sys; print(' '.join(e['id'][:8] for e in json.load(sys.stdin)['events']))"


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """The file whose creation ends the steps of the `held` agent."""
    return tmp_path / "release"


@pytest.fixture
def agents(release: Path) -> AgentCatalog:
    """The example agents, and some that take a while (runs of one key would overlap)."""
    base = AgentCatalog.load(EXAMPLES / "agents.yaml")
    extra = {
        "slow": Agent(name="slow", command=("sleep", "0.3"), timeout_s=30),
        "slower": Agent(name="slower", command=("sleep", "2"), timeout_s=30),
        "slowest": Agent(name="slowest", command=("sleep", "8"), timeout_s=30),
        # Runs until the test creates `release`: a run that surely runs while others arrive.
        "held": Agent(
            name="held", command=("sh", "-c", f"while [ ! -f {release} ]; do sleep 0.05; done"), timeout_s=60
        ),
        # Prints (the start of) the ids of the events its run holds (debounce, batch).
        "show": Agent(name="show", command=("python3", "-c", SHOW_EVENTS), timeout_s=30),
    }
    return AgentCatalog(agents={**base.agents, **extra})


def remediation(name: str, agent: str, **trigger: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "webhook", "source": "alertmanager", **trigger},
        "steps": [{"name": "fix", "agent": agent}],
    }


def alerts(count: int, **labels: str) -> dict[str, Any]:
    body = notification(count, "flow")
    for alert in body["alerts"]:
        alert["labels"].update(labels)
    return body


def run_ids(definition: str, body: dict[str, Any]) -> list[str]:
    return [
        event_run_id(
            definition, "alertmanager", alert_dedupe_key(body["receiver"], a["fingerprint"], a["startsAt"], a["status"])
        )
        for a in body["alerts"]
    ]


async def assert_one_at_a_time(
    client: Client, results: dict[str, RunState], service_of: dict[str, str], per_service: int
) -> None:
    """Every run succeeded and exists once, each service had `per_service` of them, and no two
    of a service overlapped (their step `fix` one after the other)."""
    spans = defaultdict(list)
    for run, result in results.items():
        assert result.status == "succeeded"
        step = result.steps["fix"]
        assert step.started_at is not None and step.finished_at is not None
        spans[service_of[run]].append((step.started_at, step.finished_at))
    for name, times in spans.items():
        times.sort()
        assert len(times) == per_service
        for (_, finished), (started, _) in itertools.pairwise(times):
            assert started >= finished, f"two runs of {name} overlapped"
    for run in service_of:
        assert len(await runs_of(client, run)) == 1


async def lane(client: Client, definition: str, key: str) -> LaneState:
    state: LaneState = await client.get_workflow_handle(lane_id(definition, key)).query(
        LANE_QUERY, result_type=LaneState
    )
    return state


@pytest.mark.usefixtures("worker")
async def test_a_storm_runs_one_remediation_per_service_at_a_time_and_every_alert_once(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put(remediation("Remediate", "slow", concurrency={"key": "${{ labels.service }}", "limit": 1}))
    services = [f"svc-{n}" for n in range(5)]
    bodies = {service: [alerts(2, service=service) for _ in range(3)] for service in services}
    service_of = {run: s for s, bs in bodies.items() for b in bs for run in run_ids("remediate", b)}
    service = triggers_service()
    async with running(service.run, service.stop):
        for round_ in range(3):  # interleaved, as a storm arrives
            for name in services:
                assert (await gateway.post("/hooks/alertmanager", json=bodies[name][round_])).status == 202
        results = {run: await wait_for_result(temporal_client, run, timeout=90) for run in service_of}

    await assert_one_at_a_time(temporal_client, results, service_of, per_service=6)
    state = await lane(temporal_client, "remediate", "svc-0")
    assert (state.running, state.queued, state.config and state.config.limit) == ([], [], 1)
    # The lane is deterministic: its history replays in Temporal's sandbox.
    history = await temporal_client.get_workflow_handle(lane_id("remediate", "svc-0")).fetch_history()
    await Replayer(workflows=[HooklineLane], data_converter=temporal_client.data_converter).replay_workflow(history)


@pytest.mark.usefixtures("worker")
async def test_skip_priority_and_a_resolved_waiting_alert(
    release: Path,
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put(remediation("Skipping", "held", concurrency={"key": "${{ labels.service }}", "mode": "skip"}))
    await store.put(
        remediation(
            "Ranked",
            "held",
            concurrency={"key": "${{ labels.service }}"},
            priority="${{ labels.rank }}",
            on_resolved="signal",
        )
    )
    service = triggers_service()
    async with running(service.run, service.stop):
        first = alerts(1, service="a", rank="9")
        assert (await gateway.post("/hooks/alertmanager", json=first)).status == 202
        [skipping_first] = run_ids("skipping", first)
        [ranked_first] = run_ids("ranked", first)
        await started_runs(temporal_client, ranked_first, timeout=20)
        later = [alerts(1, service="a", rank=rank) for rank in ("3", "1", "2", "5")]
        for body in later:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        ranked = [run_ids("ranked", body)[0] for body in later]
        # The rank-5 alert resolves while it waits: it is dropped from the queue.
        resolved = json.loads(json.dumps(later[3]))
        resolved["alerts"][0]["status"] = resolved["status"] = "resolved"
        resolved["alerts"][0]["endsAt"] = "2026-11-29T12:00:00Z"
        assert (await gateway.post("/hooks/alertmanager", json=resolved)).status == 202
        # Both lanes' first runs hold until released: what came meanwhile waited, or was skipped.
        skipped: LaneState = await eventually(
            lambda: lane(temporal_client, "skipping", "a"), "the skipping lane", until=lambda s: len(s.skipped) == 4
        )
        dropped: LaneState = await eventually(
            lambda: lane(temporal_client, "ranked", "a"),
            "three waiting and the resolved one dropped",
            until=lambda s: len(s.queued) == 3 and s.dropped == [ranked[3]],
        )
        release.touch()
        results = [await wait_for_result(temporal_client, run, timeout=60) for run in ranked[:3]]

    starts = sorted((r.steps["fix"].started_at, rank) for r, rank in zip(results, ("3", "1", "2"), strict=True))
    assert [rank for _, rank in starts] == ["1", "2", "3"]  # lower priority value first
    assert sorted(skipped.skipped) == sorted(run_ids("skipping", body)[0] for body in later)
    assert len(await runs_of(temporal_client, skipping_first)) == 1
    for body in later:
        assert await runs_of(temporal_client, run_ids("skipping", body)[0]) == []
    await asyncio.sleep(0.5)
    assert await runs_of(temporal_client, ranked[3]) == []  # resolved while it waited: never ran
    assert dropped.queued == [ranked[1], ranked[2], ranked[0]]  # by rank: 1, 2, 3


@pytest.mark.usefixtures("worker")
async def test_the_api_shows_a_definitions_lanes_and_explain_the_lane_an_event_would_wait_in(
    api: TestClient[Any, Any], temporal_client: Client, triggers_service: Callable[..., TriggersService]
) -> None:
    body = remediation("Queued", "slowest", concurrency={"key": "${{ labels.service }}"}, priority="${{ labels.rank }}")
    reply = await api.post(f"{API}/workflows", json=body, headers=auth("a"))
    assert reply.status == 201, await reply.text()
    definition = (await reply.json())["id"]
    posted = [alerts(1, service="db", rank=rank) for rank in ("5", "2", "1")]
    question = {"source": "alertmanager", "body": posted[1]}
    explained = await api.post(f"{API}/events/explain", json=question, headers=auth("a"))
    [row] = (await explained.json())["events"][0]["definitions"]
    assert row["flow_control"] == {"key": "db", "limit": 1, "mode": "queue", "priority": "2"}
    runs = [run_ids(definition, body)[0] for body in posted]
    service = triggers_service()
    async with running(service.run, service.stop):
        assert (await api.post("/hooks/alertmanager", json=posted[0])).status == 202
        await started_runs(temporal_client, runs[0], timeout=20)
        for body in posted[1:]:
            assert (await api.post("/hooks/alertmanager", json=body)).status == 202

        async def lanes() -> list[Any]:
            reply = await api.get(f"{API}/workflows/{definition}/lanes", headers=auth("a"))
            items: list[Any] = (await reply.json())["items"]
            return items

        def two_waiting(items: list[Any]) -> bool:
            return bool(items) and len(items[0]["queued"]) == 2

        lane_now: Any = (await eventually(lanes, "one running, two waiting", until=two_waiting, timeout=20))[0]
        assert (lane_now["key"], lane_now["limit"], lane_now["running"]) == ("db", 1, [runs[0]])
        assert lane_now["queued"] == [runs[2], runs[1]]  # rank 1 before rank 2
        assert (await api.get(f"{API}/workflows/{definition}/lanes", headers=auth("b"))).status == 404
        first = await api.get(f"{API}/events?limit=3", headers=auth("a"))
        decided = [item["id"] for item in (await first.json())["items"]]
        page = await (await api.get(f"{API}/events/{decided[0]}", headers=auth("a"))).json()
        assert [d["outcome"] for d in page["decisions"]] == ["queued"]
        cancel = {"filter": {"definition": definition}}
        assert (await api.post(f"{API}/executions/cancel", json=cancel, headers=auth("a"))).status == 200


@pytest.mark.usefixtures("worker")
async def test_throttle_holds_the_rate_replace_queued_keeps_the_latest_and_cancel_running_lets_the_newest_win(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put(remediation("Throttled", "slow", throttle={"limit": 3, "period": "2s"}))
    await store.put(
        remediation("Latest", "slower", concurrency={"key": "${{ labels.service }}", "mode": "replace_queued"})
    )
    await store.put(
        remediation("Newest", "slowest", concurrency={"key": "${{ labels.service }}", "mode": "cancel_running"})
    )
    service = triggers_service()
    async with running(service.run, service.stop):
        burst = [alerts(1, service="t") for _ in range(9)]
        for body in burst:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        first, *rest = [alerts(1, service="r") for _ in range(4)]
        assert (await gateway.post("/hooks/alertmanager", json=first)).status == 202
        await started_runs(temporal_client, run_ids("latest", first)[0], timeout=20)
        await started_runs(temporal_client, run_ids("newest", first)[0], timeout=20)
        for body in rest:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
            await asyncio.sleep(0.2)  # in this order
        throttled = [await wait_for_result(temporal_client, run_ids("throttled", b)[0], timeout=60) for b in burst]
        latest = [run_ids("latest", b)[0] for b in (first, *rest)]
        await wait_for_result(temporal_client, latest[-1], timeout=30)
        newest = [run_ids("newest", b)[0] for b in (first, *rest)]
        last = await wait_for_result(temporal_client, newest[-1], timeout=30)

    # Throttle: no 2 s window holds more than 3 starts (the lane's clock and the run's first step
    # differ by the start itself: 0.25 s of slack).
    starts = sorted(r.steps["fix"].started_at for r in throttled if r.steps["fix"].started_at)
    assert len(starts) == 9
    for earlier, later in zip(starts, starts[3:], strict=False):
        assert (later - earlier).total_seconds() >= 2 - 0.25
    # replace_queued: the first ran, the last waited and ran, the two between were replaced.
    assert [bool(await runs_of(temporal_client, run)) for run in latest] == [True, False, False, True]
    replaced = await lane(temporal_client, "latest", "r")
    assert sorted(replaced.replaced) == sorted(latest[1:3])
    # cancel_running: the newest won; the one running when it came was cancelled.
    assert last.status == "succeeded"
    newest_lane = await lane(temporal_client, "newest", "r")
    assert newest[0] in newest_lane.cancelled
    ran = [r for r in newest if await runs_of(temporal_client, r)]
    assert ran[0] == newest[0] and ran[-1] == newest[-1]


@pytest.mark.usefixtures("worker")
async def test_debounce_makes_one_run_of_a_burst_and_batch_runs_of_at_most_max_events_none_twice(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put(remediation("Debounced", "show", debounce={"key": "${{ labels.service }}", "period": "2s"}))
    await store.put(
        remediation("Batched", "show", batch={"key": "${{ labels.service }}", "max_events": 10, "max_wait": "3s"})
    )
    service = triggers_service()
    async with running(service.run, service.stop):
        burst = [alerts(1, service="d") for _ in range(25)]
        event_ids = set()
        for body in burst:
            reply = await gateway.post("/hooks/alertmanager", json=body)
            assert reply.status == 202
            event_ids |= {event_id[:8] for event_id in (await reply.json())["event_ids"]}

        async def runs(definition: str, count: int) -> list[Any]:
            query = f"WorkflowType = 'HooklineRun' AND HooklineDefinitionId = '{definition}'"

            async def found() -> list[Any]:
                return [w async for w in temporal_client.list_workflows(query)]

            listed: list[Any] = await eventually(
                found, f"{count} runs of {definition}", until=lambda f: len(f) >= count, timeout=30
            )
            return listed

        [debounced_run] = await runs("debounced", 1)
        debounced = await wait_for_result(temporal_client, debounced_run.id, timeout=30)
        batch_runs = await runs("batched", 3)
        batched = [await wait_for_result(temporal_client, w.id, timeout=30) for w in batch_runs]
        await asyncio.sleep(1)  # nothing more comes
        assert len(await runs("debounced", 1)) == 1 and len(await runs("batched", 3)) == 3

    assert set((debounced.steps["fix"].output or "").split()) == event_ids  # one run held all 25
    assert ":debounce:" in debounced_run.id and all(":batch:" in w.id for w in batch_runs)
    held = [(result.steps["fix"].output or "").split() for result in batched]
    assert sorted(len(ids) for ids in held) == [5, 10, 10]
    assert sorted(i for ids in held for i in ids) == sorted(event_ids)  # every event in one batch, none twice
