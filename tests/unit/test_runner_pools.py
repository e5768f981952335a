"""Which runner pools there are and which kinds serve them (GET /api/v1/runners' rows)."""

from __future__ import annotations

from schemas.agents import Agent, AgentCatalog
from worker.pools import pools_of


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
