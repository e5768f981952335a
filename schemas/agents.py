"""Agents: named, configured actions that steps refer to (which runner pool, what it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Agent", "AgentCatalog", "AgentConfigError"]


class AgentConfigError(ValueError):
    """The agents file is missing or invalid; the message names the file and the bad entry."""


class Agent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    runner: str = Field("shell", description="Runner kind: shell, sandbox, http, ssh, container, kubernetes, ...")
    pool: str | None = Field(None, description="Runner pool (task queue suffix); defaults to the runner kind.")
    command: tuple[str, ...] = Field(
        (), description="argv (shell, sandbox, ssh, container, kubernetes); event data arrives as data, never here."
    )
    workdir: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(300.0, gt=0)
    options: dict[str, Any] = Field(
        default_factory=dict, description="Runner-specific settings, validated by the runner (docs/runners.md)."
    )
    description: str | None = None
    teams: tuple[str, ...] | None = Field(
        None, description="The teams whose definitions may name it; absent: every team."
    )

    @property
    def pool_name(self) -> str:
        return self.pool or self.runner

    def allows(self, team: str) -> bool:
        """Whether steps of `team`'s definitions may run this agent."""
        return self.teams is None or team in self.teams


class AgentCatalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    agents: dict[str, Agent] = Field(default_factory=dict)

    def get(self, name: str) -> Agent | None:
        return self.agents.get(name)

    def for_team(self, team: str) -> dict[str, Agent]:
        """The agents `team` may use; to that team, the others do not exist."""
        return {name: agent for name, agent in self.agents.items() if agent.allows(team)}

    @classmethod
    def load(cls, path: Path | None) -> AgentCatalog:
        """Read `agents:` from a YAML file; relative workdirs are relative to the file."""
        if path is None:
            return cls()
        try:
            doc: Any = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AgentConfigError(f"cannot read agents file {path}: {exc}") from exc
        raw = doc.get("agents") if isinstance(doc, dict) else None
        if not isinstance(raw, dict):
            raise AgentConfigError(f"{path}: expected a mapping `agents: {{name: {{runner: ..., ...}}}}`")
        agents: dict[str, Agent] = {}
        for name, spec in raw.items():
            try:
                agent = Agent.model_validate({**(spec or {}), "name": str(name)})
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise AgentConfigError(f"{path}: agents.{name}: {problems}") from exc
            workdir = (
                agent.workdir if agent.workdir and agent.workdir.is_absolute() else path.parent / (agent.workdir or ".")
            )
            agents[str(name)] = agent.model_copy(update={"workdir": workdir.resolve()})
        return cls(agents=agents)
