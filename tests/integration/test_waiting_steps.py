"""Waiting steps on the real stack (docs/waiting-steps.md): approvals decided through the API,
`wait_for` meeting events that come through the gateway and the triggers, a `sleep` outliving its
worker, and a resolved alert ending a pending approval. Timeouts are short; every run's history
is replayed in Temporal's sandbox afterwards."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from temporalio.client import Client
from temporalio.worker import Replayer

from gateway.sources.alertmanager import alert_dedupe_key
from hookline.runs import event_run_id, waits_id
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import RunState
from tests.conftest import running
from tests.eventually import eventually
from tests.integration.conftest import start_component, wait_for_result
from tests.integration.test_api_support import API, auth
from tests.notifications import notification, resolved
from tests.replaying import replayed
from triggers.app import TriggersService
from worker.waitbox import HooklineWaits
from worker.workflow import HooklineRun

Api = TestClient[Any, Any]
ALERT = 'alertname="HighErrorRate"'
# `log` records the step's name; `echo` answers its input as JSON (its output); `hold` waits for
# a file named "release".
SCRIPTS = {
    "log": ["sh", "-c", 'echo "$HOOKLINE_STEP" >> steps.log'],
    "echo": ["python3", "-c", "import json, sys; print(json.dumps(json.load(sys.stdin)['input']))"],
    "hold": ["sh", "-c", "while [ ! -f release ]; do sleep 0.05; done"],
}


@pytest.fixture
def agents(tmp_path: Path) -> AgentCatalog:
    return AgentCatalog(
        agents={
            name: Agent(name=name, command=tuple(argv), workdir=tmp_path, timeout_s=60)
            for name, argv in SCRIPTS.items()
        }
    )


@pytest.fixture
async def triggers(triggers_service: Callable[..., TriggersService]) -> AsyncIterator[Callable[[], Any]]:
    """Start a triggers service (after the test's definitions exist: it reads them at start)."""
    stack: list[Any] = []

    async def start() -> None:
        service = triggers_service()
        context = running(service.run, service.stop)
        await context.__aenter__()
        stack.append(context)

    yield start
    for context in stack:
        await context.__aexit__(None, None, None)


async def define(api: Api, steps: list[dict[str, Any]], **extra: Any) -> str:
    """Team a's definition of `steps`, under an id of its own (tests share the namespace)."""
    body = {"name": "Waits", "id": f"waits-{uuid.uuid4().hex[:8]}", "team_id": "team-a", "steps": steps, **extra}
    response = await api.post(f"{API}/workflows", json=body, headers=auth("a"))
    assert response.status == 201, await response.text()
    definition_id: str = (await response.json())["id"]
    return definition_id


async def start(api: Api, definition_id: str, **run_input: Any) -> str:
    response = await api.post(f"{API}/workflows/{definition_id}/start", json={"input": run_input}, headers=auth("a"))
    assert response.status == 202, await response.text()
    execution_id: str = (await response.json())["execution_id"]
    return execution_id


async def steps_of(api: Api, execution_id: str) -> dict[str, Any]:
    response = await api.get(f"{API}/executions/{execution_id}", headers=auth("a"))
    assert response.status == 200, await response.text()
    steps: dict[str, Any] = (await response.json())["steps"]
    return steps


async def reaches(api: Api, execution_id: str, step: str, status: str) -> dict[str, Any]:
    """The step's state once it has `status`."""

    async def state() -> dict[str, Any]:
        return (await steps_of(api, execution_id))[step]

    found: dict[str, Any] = await eventually(
        state, f"step {step} of {execution_id} to be {status}", until=lambda s: s["status"] == status, timeout=30
    )
    return found


async def pending(api: Api, token: str = "a", *, definition_id: str | None = None) -> list[dict[str, Any]]:
    """The approvals the API lists as pending for `token`'s team; with `definition_id`, only that
    definition's (the tests share Temporal's namespace: another test's run may wait for team a too)."""
    response = await api.get(f"{API}/approvals?status=pending", headers=auth(token))
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return [item for item in items if definition_id in (None, item["definition_id"])]


async def decide(api: Api, execution_id: str, decision: str, token: str = "a", comment: str | None = None) -> Any:
    return await api.post(
        f"{API}/executions/{execution_id}/approvals/approve",
        json={"decision": decision, **({"comment": comment} if comment else {})},
        headers=auth(token),
    )


async def finished(client: Client, execution_id: str) -> RunState:
    """The run's final state (it may have failed), after its history replayed in the sandbox."""
    handle = client.get_workflow_handle(execution_id)
    await eventually(
        lambda: handle.describe(), f"{execution_id} to end", until=lambda d: d.close_time is not None, timeout=60
    )
    replayer = Replayer(workflows=[HooklineRun, HooklineWaits], data_converter=client.data_converter)
    await replayed(replayer, await handle.fetch_history())
    state: RunState = await handle.query("state", result_type=RunState)
    return state


def statuses(state: RunState) -> dict[str, str]:
    return {name: step.status for name, step in state.steps.items()}


def lines(tmp_path: Path) -> list[str]:
    log = tmp_path / "steps.log"
    return log.read_text().splitlines() if log.exists() else []


# --- approvals ----------------------------------------------------------------------------------

APPROVAL = {
    "name": "approve",
    "approval": {"message": "Restart ${{ input.service }}?", "timeout": "60s"},
}


@pytest.mark.usefixtures("worker")
async def test_an_approval_granted_through_the_api_lets_the_run_go_on(
    api: Api, temporal_client: Client, tmp_path: Path
) -> None:
    definition_id = await define(
        api,
        [
            {"name": "notify", "agent": "echo", "with": {"url": "${{ approvals.approve.url }}"}},
            APPROVAL,
            {"name": "act", "agent": "log"},
        ],
    )
    execution_id = await start(api, definition_id, service="checkout")
    waiting = await reaches(api, execution_id, "approve", "waiting")
    assert waiting["approval"]["message"] == "Restart checkout?"
    [listed] = await eventually(
        lambda: pending(api, definition_id=definition_id), "the approval to be listed", timeout=15
    )
    assert (listed["execution_id"], listed["step"]) == (execution_id, "approve")
    # The step before it had the approval's URL to send people to.
    state = await temporal_client.get_workflow_handle(execution_id).query("state", result_type=RunState)
    assert state.steps["notify"].output is not None and listed["links"]["decide"] in state.steps["notify"].output
    assert listed["links"]["decide"] == f"{API}/executions/{execution_id}/approvals/approve"
    assert await pending(api, "b", definition_id=definition_id) == []
    assert (await decide(api, execution_id, "approve", token="b")).status == 404  # another team's run
    refused = await decide(api, execution_id, "approve", token="a-read")  # without the execute scope
    assert refused.status == 403, await refused.text()

    answer = await decide(api, execution_id, "approve", comment="go ahead")
    assert answer.status == 200, await answer.text()
    decided = (await answer.json())["approval"]
    assert decided["status"] == "approved"
    assert [(d["decision"], d["by"], d["comment"]) for d in decided["decisions"]] == [
        ("approve", "team-a-ci", "go ahead")
    ]
    final = await finished(temporal_client, execution_id)
    assert statuses(final) == {"notify": "succeeded", "approve": "succeeded", "act": "succeeded"}
    assert final.steps["approve"].approval is not None
    assert final.steps["approve"].approval.decisions[0].at >= final.steps["approve"].approval.requested_at
    assert lines(tmp_path) == ["act"]
    assert await pending(api, definition_id=definition_id) == []
    history = await temporal_client.get_workflow_handle(execution_id).fetch_history()
    assert any(e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events)


@pytest.mark.usefixtures("worker")
async def test_a_rejected_approval_skips_the_steps_that_needed_it(
    api: Api, temporal_client: Client, tmp_path: Path
) -> None:
    definition_id = await define(
        api,
        [
            APPROVAL,
            {"name": "act", "agent": "log"},
            {"name": "after-act", "agent": "log"},
            {"name": "tell", "agent": "log", "requires": ["approve"], "when": "steps.approve.status == 'rejected'"},
        ],
    )
    execution_id = await start(api, definition_id, service="checkout")
    await reaches(api, execution_id, "approve", "waiting")
    answer = await decide(api, execution_id, "reject", comment="not during the sale")
    assert answer.status == 200, await answer.text()
    final = await finished(temporal_client, execution_id)
    assert final.status == "succeeded"
    assert statuses(final) == {"approve": "rejected", "act": "skipped", "after-act": "skipped", "tell": "succeeded"}
    approval = final.steps["approve"].approval
    assert approval is not None and approval.status == "rejected"
    assert [(d.decision, d.comment) for d in approval.decisions] == [("reject", "not during the sale")]
    assert lines(tmp_path) == ["tell"]


@pytest.mark.parametrize(
    ("on_timeout", "step", "act", "run"),
    [
        ("reject", "rejected", "skipped", "succeeded"),
        ("approve", "succeeded", "succeeded", "succeeded"),
        ("fail", "failed", "skipped", "failed"),
    ],
)
@pytest.mark.usefixtures("worker")
async def test_an_approval_nobody_decides_ends_as_its_on_timeout_says(
    api: Api, temporal_client: Client, on_timeout: str, step: str, act: str, run: str
) -> None:
    approval = {"name": "approve", "approval": {"timeout": "1s", "on_timeout": on_timeout}}
    definition_id = await define(api, [approval, {"name": "act", "agent": "log"}])
    execution_id = await start(api, definition_id)
    final = await finished(temporal_client, execution_id)
    assert (final.status, final.steps["approve"].status, final.steps["act"].status) == (run, step, act)
    state = final.steps["approve"].approval
    assert state is not None and state.timed_out and state.decisions == []
    late = await decide(api, execution_id, "approve")
    assert late.status == 409, await late.text()


@pytest.mark.usefixtures("worker")
async def test_two_decisions_at_the_same_moment_apply_once_and_the_second_gets_409_with_the_first(
    api: Api, temporal_client: Client
) -> None:
    definition_id = await define(api, [APPROVAL, {"name": "act", "agent": "log"}])
    execution_id = await start(api, definition_id, service="checkout")
    await reaches(api, execution_id, "approve", "waiting")
    answers = await asyncio.gather(
        decide(api, execution_id, "approve", token="a", comment="first?"),
        decide(api, execution_id, "reject", token="ops", comment="or me?"),
    )
    assert sorted(a.status for a in answers) == [200, 409]
    won = next(a for a in answers if a.status == 200)
    lost = next(a for a in answers if a.status == 409)
    winner = (await won.json())["approval"]["decisions"]
    problem = await lost.json()
    assert lost.content_type == "application/problem+json"
    assert problem["approval"]["decisions"] == winner  # the second is told the first decision
    final = await finished(temporal_client, execution_id)
    assert final.steps["approve"].approval is not None
    assert [d.by for d in final.steps["approve"].approval.decisions] == [winner[0]["by"]]
    assert final.steps["approve"].status == ("succeeded" if winner[0]["decision"] == "approve" else "rejected")


@pytest.mark.usefixtures("worker")
async def test_a_resolved_alert_ends_a_pending_approval(
    api: Api, temporal_client: Client, triggers: Callable[[], Any], tmp_path: Path
) -> None:
    definition_id = await define(
        api,
        [APPROVAL, {"name": "act", "agent": "log", "when": "resolved == null"}, {"name": "notify", "agent": "log"}],
        trigger={"type": "webhook", "source": "alertmanager", "filter": [ALERT], "on_resolved": "signal"},
    )
    await triggers()
    firing = notification(1, f"resolve-{uuid.uuid4().hex[:6]}")
    alert = firing["alerts"][0]
    execution_id = event_run_id(
        definition_id,
        "alertmanager",
        alert_dedupe_key(firing["receiver"], alert["fingerprint"], alert["startsAt"], "firing"),
    )
    assert (await api.post("/hooks/alertmanager", json=firing)).status == 202
    await eventually(
        lambda: pending(api), "the approval to be listed", until=lambda items: execution_id in str(items), timeout=30
    )
    assert (await api.post("/hooks/alertmanager", json=resolved(firing))).status == 202
    final = await finished(temporal_client, execution_id)
    assert statuses(final) == {"approve": "skipped", "act": "skipped", "notify": "succeeded"}
    approval = final.steps["approve"].approval
    assert approval is not None and (approval.status, approval.decisions) == ("resolved", [])
    assert final.resolved_by is not None
    assert lines(tmp_path) == ["notify"]
    assert execution_id not in str(await pending(api))


@pytest.mark.usefixtures("worker")
async def test_each_decision_is_a_row_of_the_run_history_with_who_decided_what_and_why(
    api: Api, temporal_client: Client
) -> None:
    approval = {"name": "approve", "approval": {"timeout": "60s", "min_approvals": 2}}
    definition_id = await define(api, [approval, {"name": "act", "agent": "log"}])
    execution_id = await start(api, definition_id)
    await reaches(api, execution_id, "approve", "waiting")
    assert (await decide(api, execution_id, "approve", token="a", comment="looks right")).status == 200
    assert (await decide(api, execution_id, "approve", token="a-read")).status == 403  # leaves no trace
    assert (await decide(api, execution_id, "approve", token="ops")).status == 200
    await finished(temporal_client, execution_id)

    response = await api.get(f"{API}/executions/{execution_id}/history", headers=auth("a"))
    assert response.status == 200, await response.text()
    events = (await response.json())["events"]
    rows = [
        (e["type"], e["step"], e["decision"], e["by"], e.get("comment"))
        for e in events
        if e["type"].startswith("approval_")
    ]
    assert rows == [
        ("approval_accepted", "approve", "approve", "team-a-ci", "looks right"),
        ("approval_completed", "approve", "approve", "team-a-ci", "looks right"),
        ("approval_accepted", "approve", "approve", "operator", None),
        ("approval_completed", "approve", "approve", "operator", None),
    ]
    types = [e["type"] for e in events]
    assert types.index("approval_completed") < types.index("step_scheduled")  # before the step it let run
    assert all("error" not in e for e in events if e["type"].startswith("approval_"))


@pytest.mark.usefixtures("worker")
async def test_a_decision_is_audited_naming_its_execution_and_step(api: Api, temporal_client: Client) -> None:
    definition_id = await define(api, [APPROVAL])
    execution_id = await start(api, definition_id, service="checkout")
    await reaches(api, execution_id, "approve", "waiting")
    assert (await decide(api, execution_id, "approve", token="a-read")).status == 403
    assert (await decide(api, execution_id, "reject", comment="no")).status == 200
    await finished(temporal_client, execution_id)

    async def audited() -> list[dict[str, Any]]:
        response = await api.get(f"{API}/audit?action=approval.decide", headers=auth("a"))
        assert response.status == 200, await response.text()
        entries: list[dict[str, Any]] = (await response.json())["items"]
        return [e for e in entries if e["target"].get("execution_id") == execution_id]

    entries = await eventually(audited, "the two decisions to be audited", until=lambda e: len(e) == 2)
    assert [(e["actor"], e["status"], e["outcome"]) for e in entries] == [
        ("team-a-ci", 200, "succeeded"),
        ("team-a-viewer", 403, "refused"),
    ]
    assert all(e["target"] == {"execution_id": execution_id, "step": "approve"} for e in entries)
    assert entries[0]["details"]["step"] == "approve"


# --- wait_for -----------------------------------------------------------------------------------


def wait_step(**options: Any) -> dict[str, Any]:
    spec = {
        "source": "alertmanager",
        "filter": [ALERT],
        "correlate": {"event": "${{ labels.instance }}", "run": "${{ input.instance }}"},
        **options,
    }
    return {"name": "wait", "wait_for": spec}


async def alert(api: Api, instance: str) -> str:
    """Fire an alert of `instance` through the gateway; its event id."""
    body = notification(1, instance)
    response = await api.post("/hooks/alertmanager", json=body)
    assert response.status == 202, await response.text()
    event_ids: list[str] = (await response.json())["event_ids"]
    return event_ids[0]


async def decided(api: Api, event_id: str) -> None:
    async def status() -> str | None:
        response = await api.get(f"{API}/events/{event_id}", headers=auth("ops"))
        return (await response.json()).get("status") if response.status == 200 else None

    await eventually(status, f"the triggers to decide {event_id}", until=lambda s: s == "decided", timeout=30)


async def mailbox_has_it(client: Client, definition_id: str, key: str) -> None:
    """The triggers have brought the event to its mailbox (it runs)."""
    box = waits_id(definition_id, "wait", key)

    async def there() -> bool:
        return bool([w async for w in client.list_workflows(f"WorkflowId = '{box}'")])

    await eventually(there, f"the mailbox {box}", timeout=30, interval=0.2)


@pytest.mark.usefixtures("worker")
async def test_an_event_that_came_shortly_before_the_wait_is_taken_within_the_lookback(
    api: Api, temporal_client: Client, triggers: Callable[[], Any]
) -> None:
    definition_id = await define(api, [wait_step(timeout="30s", lookback="5m")])
    await triggers()
    instance = f"early-{uuid.uuid4().hex[:6]}"
    event_id = await alert(api, instance)
    await mailbox_has_it(temporal_client, definition_id, f"{instance}-0:8080")
    execution_id = await start(api, definition_id, instance=f"{instance}-0:8080")
    final = await finished(temporal_client, execution_id)
    assert final.status == "succeeded"
    assert final.steps["wait"].wait is not None and final.steps["wait"].wait.event_id == event_id


@pytest.mark.usefixtures("worker")
async def test_an_event_before_the_wait_without_a_lookback_is_not_taken(
    api: Api, temporal_client: Client, triggers: Callable[[], Any]
) -> None:
    definition_id = await define(
        api,
        [
            wait_step(timeout="2s", on_timeout="succeed"),
            {"name": "got", "agent": "echo", "with": {"e": "${{ steps.wait.output }}"}},
        ],
    )
    await triggers()
    instance = f"before-{uuid.uuid4().hex[:6]}"
    await alert(api, instance)
    await mailbox_has_it(temporal_client, definition_id, f"{instance}-0:8080")
    execution_id = await start(api, definition_id, instance=f"{instance}-0:8080")
    final = await finished(temporal_client, execution_id)
    assert final.status == "succeeded"
    assert final.steps["wait"].wait is not None and final.steps["wait"].wait.status == "timed_out"
    assert final.steps["got"].output is not None and '"e": null' in final.steps["got"].output


@pytest.mark.usefixtures("worker")
async def test_an_event_during_the_wait_reaches_every_run_waiting_for_it_and_only_them(
    api: Api, temporal_client: Client, triggers: Callable[[], Any]
) -> None:
    definition_id = await define(api, [wait_step(timeout="60s")])
    await triggers()
    instance = f"during-{uuid.uuid4().hex[:6]}"
    key = f"{instance}-0:8080"
    waiting = [await start(api, definition_id, instance=key) for _ in range(2)]
    other = await start(api, definition_id, instance=f"{instance}-other")
    for execution_id in [*waiting, other]:
        await reaches(api, execution_id, "wait", "waiting")
    event_id = await alert(api, instance)
    for execution_id in waiting:
        final = await finished(temporal_client, execution_id)
        assert final.status == "succeeded"
        assert final.steps["wait"].wait is not None and final.steps["wait"].wait.event_id == event_id
    assert (await steps_of(api, other))["wait"]["status"] == "waiting"  # another key: still waiting
    await temporal_client.get_workflow_handle(other).cancel()


@pytest.mark.usefixtures("worker")
async def test_an_event_after_the_wait_ended_is_ignored_by_the_run(
    api: Api, temporal_client: Client, triggers: Callable[[], Any], tmp_path: Path
) -> None:
    definition_id = await define(api, [wait_step(timeout="60s"), {"name": "hold", "agent": "hold"}])
    await triggers()
    instance = f"after-{uuid.uuid4().hex[:6]}"
    execution_id = await start(api, definition_id, instance=f"{instance}-0:8080")
    await reaches(api, execution_id, "wait", "waiting")
    first = await alert(api, instance)
    await reaches(api, execution_id, "hold", "running")
    second = await alert(api, instance)  # the same key, once the run waits no more
    await decided(api, second)  # brought to the mailbox: the triggers do that before they record the decision
    (tmp_path / "release").touch()
    final = await finished(temporal_client, execution_id)
    assert final.status == "succeeded"
    assert final.steps["wait"].wait is not None and final.steps["wait"].wait.event_id == first != second


@pytest.mark.usefixtures("worker")
async def test_a_wait_for_an_event_that_never_comes_fails_at_its_timeout(
    api: Api, temporal_client: Client, triggers: Callable[[], Any]
) -> None:
    definition_id = await define(api, [wait_step(timeout="1s"), {"name": "act", "agent": "log"}])
    await triggers()
    execution_id = await start(api, definition_id, instance=f"never-{uuid.uuid4().hex[:6]}")
    final = await finished(temporal_client, execution_id)
    assert (final.status, statuses(final)) == ("failed", {"wait": "failed", "act": "skipped"})
    assert final.steps["wait"].error == "no matching event within 1s"


@pytest.mark.usefixtures("worker")
async def test_a_decision_on_a_mailbox_is_404_as_on_no_execution(api: Api, temporal_client: Client) -> None:
    definition_id = await define(api, [wait_step(timeout="60s")])
    key = f"mailbox-{uuid.uuid4().hex[:6]}"
    execution_id = await start(api, definition_id, instance=key)
    await reaches(api, execution_id, "wait", "waiting")
    await mailbox_has_it(temporal_client, definition_id, key)  # the run's wait started it
    box = waits_id(definition_id, "wait", key)
    for token in ("a", "ops"):
        answer = await api.post(
            f"{API}/executions/{box}/approvals/wait", json={"decision": "approve"}, headers=auth(token)
        )
        assert answer.status == 404, await answer.text()
    await temporal_client.get_workflow_handle(execution_id).cancel()


# --- sleep --------------------------------------------------------------------------------------


@pytest.mark.long
async def test_a_sleep_outlives_its_worker(
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    agents: AgentCatalog,
    tmp_path: Path,
) -> None:
    from hookline.definitions import StoredDefinition
    from hookline.runs import build_request, start_run
    from schemas.workflow import parse_definition

    doc = {
        "name": "Nap",
        "steps": [
            {"name": "before", "agent": "log"},
            {"name": "nap", "sleep": {"for": "4s"}},
            {"name": "after", "agent": "log"},
        ],
    }
    definition = parse_definition(doc, agents=agents.agents.keys())
    stored = StoredDefinition(
        id=definition.id, version=1, digest="", document=doc, definition=definition, created_at=""
    )
    request = build_request(stored, agents, temporal_settings)
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(
        yaml.safe_dump(
            {"agents": {n: {"command": list(a.command), "workdir": str(tmp_path)} for n, a in agents.agents.items()}}
        )
    )
    variables = {
        "HOOKLINE_AGENTS_FILE": str(agents_file),
        "HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX": temporal_settings.runner_queue_prefix,
        "HOOKLINE_WORKER__PORT": "0",
    }
    first = start_component("worker", kafka_settings, temporal_settings, **variables)
    try:
        handle, _ = await start_run(temporal_client, temporal_settings, request, f"nap:{uuid.uuid4().hex}")

        async def napping() -> bool:
            state = await handle.query("state", result_type=RunState)
            return state is not None and state.steps["nap"].status == "waiting"

        await eventually(napping, "the nap to begin", timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = time.monotonic()
    second = start_component("worker", kafka_settings, temporal_settings, **variables)
    try:
        final = await wait_for_result(temporal_client, handle.id, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert final.status == "succeeded"
    assert statuses(final) == {"before": "succeeded", "nap": "succeeded", "after": "succeeded"}
    wait = final.steps["nap"].wait
    assert wait is not None and wait.until is not None and (wait.until - wait.since).total_seconds() == 4
    after = final.steps["after"].started_at
    assert after is not None and after >= wait.until  # the step after it waited the whole nap
    assert time.monotonic() - killed_at < 30
    assert lines(tmp_path) == ["before", "after"]
