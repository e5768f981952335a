"""Workflow definitions: pydantic models checked against `workflow.schema.json`.

Ordering rule: a step in `steps` that has no `requires` runs after the step listed before it
(the first one runs at once); a step with `requires` runs after exactly the steps it names, so
it may overlap with its neighbours. Steps under `parallel` all start at once.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.validation import SchemaError, validate

__all__ = [
    "DefinitionError",
    "Step",
    "Trigger",
    "WorkflowDefinition",
    "dependency_graph",
    "parse_definition",
    "slugify",
]


class DefinitionError(ValueError):
    """A definition that does not validate; `errors` lists every problem with its location."""

    def __init__(self, errors: list[SchemaError]) -> None:
        self.errors = errors
        super().__init__("; ".join(map(str, errors)))


class Trigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["webhook", "manual"]
    source: str | None = None


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    agent: str | None = None
    type: Literal["agent"] | None = None
    agent_id: str | None = None
    requires: tuple[str, ...] | None = None

    @property
    def agent_name(self) -> str:
        """The agent this step runs: `agent`, or the API form's `agent_id`."""
        return self.agent or self.agent_id or ""


class WorkflowDefinition(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str | None = None
    team_id: str | None = None
    trigger: tuple[Trigger, ...] = ()
    steps: tuple[Step, ...] = ()
    parallel: tuple[Step, ...] = ()

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        return self.trigger or (Trigger(type="manual"),)

    def all_steps(self) -> tuple[Step, ...]:
        return self.steps + self.parallel

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Step name → names of the steps it waits for (the rule in this module's docstring)."""
        return dependency_graph(
            [(s.name, s.requires) for s in self.steps], [(s.name, s.requires) for s in self.parallel]
        )


def dependency_graph(
    steps: list[tuple[str, tuple[str, ...] | list[str] | None]],
    parallel: list[tuple[str, tuple[str, ...] | list[str] | None]],
) -> dict[str, tuple[str, ...]]:
    """Apply the ordering rule to (name, requires) pairs."""
    deps: dict[str, tuple[str, ...]] = {}
    previous: str | None = None
    for name, requires in steps:
        deps[name] = tuple(requires) if requires is not None else ((previous,) if previous else ())
        previous = name
    for name, requires in parallel:
        deps[name] = tuple(requires or ())
    return deps


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:128] or "workflow"


def _semantic_errors(doc: dict[str, Any]) -> list[SchemaError]:
    errors: list[SchemaError] = []
    seen: dict[str, str] = {}
    for group in ("steps", "parallel"):
        for i, step in enumerate(doc.get(group) or []):
            where = f"{group}[{i}]"
            if step["name"] in seen:
                errors.append(
                    SchemaError(
                        f"{where}.name", f'duplicate step name "{step["name"]}" (first at {seen[step["name"]]})'
                    )
                )
            seen.setdefault(step["name"], where)
    for group in ("steps", "parallel"):
        for i, step in enumerate(doc.get(group) or []):
            for j, req in enumerate(step.get("requires") or []):
                if req not in seen:
                    errors.append(SchemaError(f"{group}[{i}].requires[{j}]", f'unknown step "{req}"'))
                elif req == step["name"]:
                    errors.append(SchemaError(f"{group}[{i}].requires[{j}]", "a step cannot require itself"))
    if not errors:
        errors.extend(_cycle_errors(doc))
    return errors


def _cycle_errors(doc: dict[str, Any]) -> list[SchemaError]:
    requires = dependency_graph(
        [(s["name"], s.get("requires")) for s in doc.get("steps") or []],
        [(s["name"], s.get("requires")) for s in doc.get("parallel") or []],
    )
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in requires.get(node, []):
            if state.get(dep) == 1:
                return [*trail[trail.index(dep) :], dep] if dep in trail else [node, dep]
            if state.get(dep) is None and (cycle := visit(dep, [*trail, dep])):
                return cycle
        state[node] = 2
        return None

    for name in requires:
        if state.get(name) is None and (cycle := visit(name, [name])):
            return [SchemaError("requires", "dependency cycle: " + " -> ".join(f'"{c}"' for c in cycle))]
    return []


def parse_definition(doc: Any) -> WorkflowDefinition:
    """Validate a loaded YAML/JSON document and build the definition; raises `DefinitionError`."""
    errors = validate("workflow", doc)
    if errors:
        raise DefinitionError(errors)
    errors = _semantic_errors(doc)
    if errors:
        raise DefinitionError(errors)
    trigger = doc.get("trigger")
    triggers = [trigger] if isinstance(trigger, dict) else (trigger or [])
    return WorkflowDefinition.model_validate({**doc, "id": doc.get("id") or slugify(doc["name"]), "trigger": triggers})
