"""Which steps run as local activities (`temporal.local_pools`), and the workers that may run the
interpreter then. The runs themselves: tests/integration/test_engine.py, every test in both modes."""

from __future__ import annotations

from typing import cast

import pytest
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum

from hookline.definitions import StoredDefinition
from hookline.runs import build_request
from hookline.settings import TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.workflow import parse_definition
from worker.app import build_runners, build_workers, check_local_pools, local_kinds
from worker.errors import PoolNotServed
from worker.runners import RunnerRegistry
from worker.settings import WorkerOptions, WorkerSettings

AGENTS = AgentCatalog(
    agents={
        "quick": Agent(name="quick", runner="shell", command=("true",), timeout_s=5),
        "long": Agent(name="long", runner="shell", command=("true",), timeout_s=300),
        "remote": Agent(name="remote", runner="ssh", pool="edge", timeout_s=5),
    }
)


def routes(settings: TemporalSettings) -> dict[str, bool]:
    doc = {
        "name": "mixed",
        "steps": [
            {"name": "quick", "agent": "quick"},
            {"name": "long", "agent": "long"},
            {"name": "long but capped", "agent": "long", "timeout": "20s"},
            {"name": "remote", "agent": "remote"},
            {"name": "inline", "action": {"runner": "shell", "command": ["true"]}, "timeout": "5s"},
        ],
    }
    definition = parse_definition(doc)
    stored = StoredDefinition(definition.id, 1, "", doc, definition, "")
    request = build_request(stored, AGENTS, settings)
    return {name: route.local for name, route in request.routes.items()}


def test_no_step_runs_locally_unless_its_pool_is_named() -> None:
    assert not any(routes(TemporalSettings()).values())


def test_steps_of_a_named_pool_within_the_timeout_cap_run_locally() -> None:
    settings = TemporalSettings(local_pools=["shell"], local_max_timeout_s=30)
    assert routes(settings) == {
        "quick": True,
        "long": False,  # its agent's 300 s are over the cap
        "long but capped": True,  # the step's own timeout counts
        "remote": False,  # pool "edge" is not named
        "inline": True,
    }


def test_a_worker_running_the_interpreter_must_serve_the_local_pools() -> None:
    check_local_pools(AGENTS, ["shell"], ["shell"])
    with pytest.raises(PoolNotServed) as refused:
        check_local_pools(AGENTS, ["shell"], ["shell", "edge"])
    assert "edge" in str(refused.value) and "local_pools" in str(refused.value)


def test_building_the_workers_stops_on_a_local_pool_it_does_not_serve() -> None:
    settings = WorkerSettings(
        temporal=TemporalSettings(local_pools=["edge"]), worker=WorkerOptions(runners=["shell"], workflows=True)
    )
    runners = build_runners(settings, RunnerRegistry.discover(plugins=[]))
    with pytest.raises(PoolNotServed):
        build_workers(settings, cast(Client, None), AGENTS, runners)  # refused before any client use


def test_the_interpreter_worker_polls_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared queue, where every new run's first workflow task waits, gets the polls
    `worker.nonsticky_poll_ratio` gives it (the SDK's default of one in five bounded how fast
    runs began); the pools' workers are left at the SDK's activity polling."""
    made: list[dict[str, object]] = []

    def worker(client: object, **options: object) -> dict[str, object]:
        made.append(options)
        return options

    monkeypatch.setattr("worker.app.Worker", worker)
    settings = WorkerSettings(
        worker=WorkerOptions(runners=["shell"], workflows=True, workflow_task_pollers=7, nonsticky_poll_ratio=0.5)
    )
    runners = build_runners(settings, RunnerRegistry.discover(plugins=[]))
    build_workers(settings, cast(Client, None), AGENTS, runners)
    interpreter = next(options for options in made if options.get("workflows"))
    assert interpreter["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(7)
    assert interpreter["nonsticky_to_sticky_poll_ratio"] == 0.5
    defaults = WorkerOptions()
    assert (defaults.workflow_task_pollers, defaults.nonsticky_poll_ratio) == (10, 1.0)
    assert all("workflow_task_poller_behavior" not in options for options in made if not options.get("workflows"))


def test_the_triggers_interpreter_has_runners_for_the_local_pools_only() -> None:
    """`triggers.interpreter` builds runners for the kinds of `temporal.local_pools`: a pool's
    agents' kinds, or the kind a pool is named after; none without local pools."""
    known = RunnerRegistry.installed_names()
    assert local_kinds(AGENTS, [], known) == []
    assert local_kinds(AGENTS, ["shell"], known) == ["shell"]
    assert local_kinds(AGENTS, ["edge"], known) == ["ssh"]
    assert local_kinds(AGENTS, ["edge", "http"], known) == ["http", "ssh"]
    assert local_kinds(AGENTS, ["nowhere"], known) == []


def test_an_interpreter_without_pools_builds_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []
    monkeypatch.setattr("worker.app.Worker", lambda client, **options: made.append(options) or options)
    settings = WorkerSettings(
        temporal=TemporalSettings(local_pools=["shell"]), worker=WorkerOptions(runners=["shell"], workflows=True)
    )
    runners = build_runners(settings, RunnerRegistry.discover(plugins=[]))
    build_workers(settings, cast(Client, None), AGENTS, runners, pools=False, identity="me:triggers")
    assert [(options["task_queue"], options["identity"]) for options in made] == [("hookline", "me:triggers")]
