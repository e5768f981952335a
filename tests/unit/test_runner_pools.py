"""Which runner pools there are and which kinds serve them (GET /api/v1/runners' rows)."""

from __future__ import annotations

from typing import cast

import pytest
from temporalio.client import Client

from hookline.pools import pools_of
from schemas.agents import Agent, AgentCatalog
from schemas.workflow import parse_definition
from worker.app import build_runners, build_workers, check_served_pools
from worker.errors import PoolNotServed
from worker.runners import RunnerRegistry
from worker.settings import WorkerOptions, WorkerSettings


def test_an_agents_pool_defaults_to_its_runner_kind() -> None:
    agents = AgentCatalog(agents={"a": Agent(name="a", runner="http"), "b": Agent(name="b", runner="shell")})
    assert pools_of(agents) == {"http": ("http",), "shell": ("shell",)}


def test_a_named_pool_lists_every_kind_its_agents_use() -> None:
    agents = AgentCatalog(
        agents={
            "a": Agent(name="a", runner="shell", pool="edge"),
            "b": Agent(name="b", runner="ssh", pool="edge"),
        }
    )
    assert pools_of(agents) == {"edge": ("shell", "ssh")}


def test_served_kinds_have_their_own_pool_even_without_agents() -> None:
    assert pools_of(AgentCatalog(), ["container"]) == {"container": ("container",)}


def test_a_pool_only_an_inline_action_names_is_a_pool_of_its_kind() -> None:
    agents = AgentCatalog(agents={"a": Agent(name="a", runner="shell", pool="edge")})
    definition = parse_definition(
        {
            "name": "inline",
            "steps": [
                {"name": "probe", "action": {"runner": "http", "pool": "dmz", "command": ["GET"]}},
                {"name": "on edge", "action": {"runner": "ssh", "pool": "edge", "command": ["true"]}},
                {"name": "plain", "action": {"runner": "container", "command": ["true"]}},
            ],
        }
    )
    assert pools_of(agents, definitions=[definition]) == {
        "container": ("container",),
        "dmz": ("http",),
        "edge": ("shell",),  # the agents' pool, whatever an action says of it
    }


def mixed_edge_pool() -> AgentCatalog:
    return AgentCatalog(
        agents={
            "a": Agent(name="a", runner="shell", pool="edge"),
            "b": Agent(name="b", runner="ssh", pool="edge"),
            "c": Agent(name="c", runner="http"),
        }
    )


def test_a_worker_refuses_a_pool_with_kinds_it_does_not_serve() -> None:
    with pytest.raises(PoolNotServed) as refused:
        check_served_pools(mixed_edge_pool(), ["shell"])
    assert "pool 'edge'" in str(refused.value) and "ssh" in str(refused.value)


def test_a_worker_serving_every_kind_of_its_pools_starts() -> None:
    check_served_pools(mixed_edge_pool(), ["shell", "ssh"])
    check_served_pools(mixed_edge_pool(), ["http"])  # never polls `edge`


def test_building_the_workers_stops_on_a_pool_it_cannot_serve() -> None:
    settings = WorkerSettings(worker=WorkerOptions(runners=["shell"], workflows=False))
    runners = build_runners(settings, RunnerRegistry.discover(plugins=[]))
    with pytest.raises(PoolNotServed):
        build_workers(settings, cast(Client, None), mixed_edge_pool(), runners)  # refused before any client use
