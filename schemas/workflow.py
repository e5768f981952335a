"""Workflow definitions: pydantic models checked against `workflow.schema.json`.

Ordering rule: a step in `steps` that has no `requires` runs after the step listed before it
(the first one runs at once); a step with `requires` runs after exactly the steps it names, so
it may overlap with its neighbours (`requires: []` starts it at once). Steps under `parallel`
all start at once unless they have `requires`. A skipped step (`when` false) counts as done for
the steps that wait for it; so does a failed step with `continue_on_error`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection
from functools import cached_property
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from schemas.expressions import expression_errors, render, template_errors
from schemas.filters import Filter, filter_errors, parse_filter
from schemas.inputs import UnusableSchema, input_violations, inputs_schema_errors
from schemas.secrets import SecretRef, malformed_references
from schemas.ticks import cron_error
from schemas.validation import SchemaError, explain, location, validate

#: Most steps (`steps` and `parallel` together) in one definition.
MAX_STEPS = 200
#: The team of definitions that name none (e.g. files applied at start-up).
DEFAULT_TEAM = "default"
#: Between the team and the team's own id in the id of a definition outside the default team.
TEAM_SEPARATOR = "~"

__all__ = [
    "DEFAULT_TEAM",
    "MAX_STEPS",
    "TEAM_SEPARATOR",
    "Action",
    "Approval",
    "Compensation",
    "Correlate",
    "DefinitionError",
    "Retries",
    "Sleep",
    "Step",
    "Trigger",
    "WaitFor",
    "WorkflowDefinition",
    "agent_errors",
    "dependency_cycle",
    "dependency_graph",
    "parse_definition",
    "parse_duration",
    "qualified_id",
    "slugify",
    "split_id",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+")


class DefinitionError(ValueError):
    """A definition that does not validate; `errors` lists every problem with its location."""

    def __init__(self, errors: list[SchemaError]) -> None:
        self.errors = errors
        super().__init__("; ".join(map(str, errors)))


def parse_duration(value: Any) -> Any:
    """Seconds from `30`, `"500ms"`, `"5m"`, `"1h30m"`; anything else passes through to fail validation."""
    if isinstance(value, str) and _DURATION.fullmatch(value):
        return sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class Concurrency(_Model):
    """At most `limit` runs of the trigger's definition per key at once (docs/flow-control.md):
    the rest wait in their lane (`queue`, by `priority` then arrival) or start nothing (`skip`)."""

    #: A template over the event (`${{ labels.service }}`); None: one lane for the definition.
    key: Any = None
    limit: int = 1
    mode: Literal["queue", "skip", "cancel_running", "replace_queued"] = "queue"


class Throttle(_Model):
    """At most `limit` starts per `period` per key; the rest wait their turn in the lane. After a
    quiet time up to `burst` more may start at once (a token bucket of `limit + burst` refilled
    at `limit` per `period`), so no `period` holds more than `limit + burst` starts and the
    sustained rate stays `limit` per `period`."""

    key: Any = None
    limit: int = 1
    period: Duration = 60.0
    burst: int = 0


class Debounce(_Model):
    """One run per key after `period` without a new event (or `max_wait` after the first),
    with every collected event."""

    key: Any = None
    period: Duration = 30.0
    max_wait: Duration | None = None


class Batch(_Model):
    """One run per key for up to `max_events` events or `max_wait` after the first."""

    key: Any = None
    max_events: int = 100
    max_wait: Duration = 30.0


class Trigger(_Model):
    type: Literal["webhook", "schedule", "kafka", "manual"]
    source: str | None = None
    topic: str | None = None
    cron: str | None = None
    timezone: str = "UTC"
    jitter: Duration = 0.0
    missed: Literal["skip", "once", "all"] = "once"
    max_missed: int = 100
    filter: Any = None
    input: Any = None
    on_resolved: Literal["signal", "cancel", "ignore", "start"] = "signal"
    concurrency: Concurrency | None = None
    throttle: Throttle | None = None
    debounce: Debounce | None = None
    batch: Batch | None = None
    #: A template giving a number: lower starts first among the events waiting in a lane.
    priority: Any = None
    #: An event waiting in its lane's queue when it resolves: dropped from the queue (default),
    #: or kept there, its run starting in turn and getting the resolution as `on_resolved` says
    #: (not `on_resolved`, which says what a resolution does to a run). Left out when it is the
    #: default, so the run requests of definitions without it are the ones recorded before it.
    resolved_while_queued: Literal["drop", "keep"] = Field("drop", exclude_if=lambda value: value == "drop")

    @model_validator(mode="after")
    def _one_lane_key(self) -> Trigger:
        if self.debounce is not None and self.batch is not None:
            raise ValueError("debounce and batch exclude each other (both decide which events make one run)")
        keys = {repr(part.key) for part in self._flow_parts()}
        if len(keys) > 1:
            raise ValueError(
                "concurrency, throttle, debounce and batch must have the same key (they share one lane per key)"
            )
        return self

    def _flow_parts(self) -> list[Concurrency | Throttle | Debounce | Batch]:
        return [p for p in (self.concurrency, self.throttle, self.debounce, self.batch) if p is not None]

    @property
    def flow_controlled(self) -> bool:
        """Whether its events go to a lane (docs/flow-control.md) instead of starting at once."""
        return bool(self._flow_parts())

    @property
    def keeps_resolved(self) -> bool:
        """Whether its lane keeps a queued event that resolves (`resolved_while_queued: keep`)."""
        return self.flow_controlled and self.resolved_while_queued == "keep"

    @property
    def lane_key(self) -> Any:
        """The template of its lane's key (None: one lane for the definition)."""
        parts = self._flow_parts()
        return parts[0].key if parts else None

    @cached_property
    def compiled_filter(self) -> Filter:
        """The parsed filter (validated with the definition, so it parses)."""
        return parse_filter(self.filter)


class Action(_Model):
    """An inline action: a runner kind and what it runs, written in the step itself."""

    runner: str
    pool: str | None = None
    command: tuple[str, ...] = ()
    env: dict[str, str | SecretRef] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


def _retries_shorthand(value: Any) -> Any:
    return {"max_attempts": value} if isinstance(value, int) and not isinstance(value, bool) else value


class Retries(_Model):
    max_attempts: int | None = None
    initial_interval: Duration | None = None
    backoff_coefficient: float | None = None
    max_interval: Duration | None = None
    non_retryable_errors: tuple[str, ...] = ()


class Compensation(_Model):
    agent: str | None = None
    action: Action | None = None
    with_: dict[str, Any] | None = Field(None, alias="with")
    timeout: Duration | None = None


Scope = Literal["read", "write", "execute"]
#: What a waiting step does when the alert that started its run resolves (`on_resolved: signal`).
OnResolved = Literal["skip", "ignore"]


class Approval(_Model):
    """Wait for people to decide (docs/waiting-steps.md): `min_approvals` approvals from tokens
    of `team` (default: the run's) holding `scope`, limited to the token names in `tokens` when
    given; one rejection rejects."""

    team: str | None = None
    scope: Scope = "execute"
    tokens: tuple[str, ...] = ()
    #: A template over the run's context, rendered when the approval begins.
    message: str | None = None
    timeout: Duration | None = None
    on_timeout: Literal["reject", "approve", "fail"] = "reject"
    min_approvals: int = 1
    on_resolved: OnResolved = "skip"

    def refusal(self, run_team: str, name: str, team: str, scopes: Collection[str], *, operator: bool) -> str | None:
        """Why the token `name` of `team` with `scopes` may not decide (None: it may); an
        operator's token acts for every team."""
        if self.tokens and name not in self.tokens:
            return f"only the tokens {', '.join(self.tokens)} may decide this approval"
        deciding = self.team or run_team
        if team != deciding and not operator:
            return f'only tokens of team "{deciding}" may decide this approval'
        if self.scope not in scopes:
            return f'deciding this approval needs a token with scope "{self.scope}"'
        return None


class Correlate(_Model):
    """Which events are this run's: those whose `event` template gives the text the run's `run`
    template gave when the wait began (both default to "": any matching event)."""

    event: Any = None
    run: Any = None


class WaitFor(_Model):
    """Wait for an event of `source` (or Kafka `topic`) passing `filter`, correlated with the run."""

    source: str | None = None
    topic: str | None = None
    filter: Any = None
    correlate: Correlate = Correlate()
    timeout: Duration | None = None
    on_timeout: Literal["fail", "succeed"] = "fail"
    #: Events that arrived this long before the wait began count too.
    lookback: Duration = 0.0
    on_resolved: OnResolved = "skip"

    @property
    def source_name(self) -> str:
        """The events' source as the triggers see it: the configured source, or `kafka:<topic>`."""
        return self.source if self.source is not None else f"kafka:{self.topic}"

    @cached_property
    def compiled_filter(self) -> Filter:
        return parse_filter(self.filter)

    def event_key(self, event_context: dict[str, Any]) -> str:
        """The correlation key of a candidate event (raises `ExpressionError`)."""
        return _key_text(render(self.correlate.event, event_context))

    def run_key(self, run_context: dict[str, Any]) -> str:
        """The correlation key a run waits for (raises `ExpressionError`)."""
        return _key_text(render(self.correlate.run, run_context))


def _key_text(value: Any) -> str:
    """A correlation key as text: a string as it is, null as "", anything else as its JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class Sleep(_Model):
    """A durable timer: `for` a duration, or `until` a time (a template giving ISO 8601 or epoch seconds)."""

    for_: Duration | None = Field(None, alias="for")
    until: str | None = None
    on_resolved: OnResolved = "skip"


class Step(_Model):
    name: str
    description: str | None = None
    agent: str | None = None
    type: Literal["agent"] | None = None
    agent_id: str | None = None
    action: Action | None = None
    requires: tuple[str, ...] | None = None
    with_: dict[str, Any] | None = Field(None, alias="with")
    when: str | None = None
    timeout: Duration | None = None
    retries: Annotated[Retries | None, BeforeValidator(_retries_shorthand)] = None
    continue_on_error: bool = False
    on_failure: Compensation | None = None
    approval: Approval | None = None
    wait_for: WaitFor | None = None
    sleep: Sleep | None = None

    @property
    def waits(self) -> Approval | WaitFor | Sleep | None:
        """The waiting kind of this step (approval, wait_for, sleep); None for a step that runs something."""
        return self.approval or self.wait_for or self.sleep

    @property
    def agent_name(self) -> str | None:
        """The agent this step runs (`agent`, or the API form's `agent_id`); None for an inline action."""
        return self.agent or self.agent_id


class WorkflowDefinition(_Model):
    id: str
    name: str
    description: str | None = None
    team_id: str | None = None
    trigger: tuple[Trigger, ...] = ()
    inputs: dict[str, Any] | None = None
    timeout: Duration | None = None
    steps: tuple[Step, ...] = ()
    parallel: tuple[Step, ...] = ()

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        return self.trigger or (Trigger(type="manual"),)

    @property
    def team(self) -> str:
        return self.team_id or DEFAULT_TEAM

    def all_steps(self) -> tuple[Step, ...]:
        return self.steps + self.parallel

    def located_steps(self) -> list[tuple[str, Step]]:
        """(location, step) pairs, e.g. ("steps[2]", step), for error messages."""
        return [(f"steps[{i}]", s) for i, s in enumerate(self.steps)] + [
            (f"parallel[{i}]", s) for i, s in enumerate(self.parallel)
        ]

    def checked_input(self, value: dict[str, Any]) -> dict[str, Any]:
        """The start input with the `inputs` schema's top-level defaults filled in; raises
        `DefinitionError` listing where it does not match (`input.version: ...`)."""
        if self.inputs is None:
            return value
        properties = self.inputs.get("properties")
        filled = dict(value)
        if isinstance(properties, dict):
            for name, spec in properties.items():
                if name not in filled and isinstance(spec, dict) and "default" in spec:
                    filled[name] = copy.deepcopy(spec["default"])  # the run's own, not the definition's
        try:
            errors = explain(input_violations(self.inputs, filled), at="input")
        except UnusableSchema as exc:
            raise DefinitionError([SchemaError("inputs", str(exc))]) from None
        if errors:
            raise DefinitionError(errors)
        return filled

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


def qualified_id(team: str | None, local_id: str) -> str:
    """The id of `team`'s definition `local_id`: ids are scoped by team, so two teams can each
    have a "deploy-application". The default team's ids stay as they are (`deploy-application`);
    another team's carry the team: `team-uuid~deploy-application`."""
    if team is None or team == DEFAULT_TEAM:
        return local_id
    return f"{team}{TEAM_SEPARATOR}{local_id}"


def split_id(definition_id: str) -> tuple[str, str]:
    """(team, the team's own id) of a definition id, qualified or not."""
    team, separated, local_id = definition_id.rpartition(TEAM_SEPARATOR)
    return (team, local_id) if separated else (DEFAULT_TEAM, definition_id)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:128] or "workflow"


def agent_errors(definition: WorkflowDefinition, known: Collection[str]) -> list[SchemaError]:
    """Steps (and compensations) that name an agent not in `known` (the agents the definition's
    team may use: an agent limited to other teams is as unknown to it as a missing one)."""
    errors: list[SchemaError] = []
    for where, step in definition.located_steps():
        field = "agent" if step.agent else "agent_id"
        if step.agent_name is not None and step.agent_name not in known:
            errors.append(SchemaError(f"{where}.{field}", f'unknown agent "{step.agent_name}"'))
        comp = step.on_failure
        if comp is not None and comp.agent is not None and comp.agent not in known:
            errors.append(SchemaError(f"{where}.on_failure.agent", f'unknown agent "{comp.agent}"'))
    return errors


def _step_errors(doc: dict[str, Any]) -> list[SchemaError]:
    located = [f"{g}[{i}]" for g in ("steps", "parallel") for i in range(len(doc.get(g) or []))]
    if len(located) > MAX_STEPS:
        return [
            SchemaError(
                located[MAX_STEPS],
                f"a definition has at most {MAX_STEPS} steps, this one {len(located)}; split it into "
                "several definitions",
            )
        ]
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
            where = f"{group}[{i}]"
            for j, req in enumerate(step.get("requires") or []):
                if req not in seen:
                    errors.append(SchemaError(f"{where}.requires[{j}]", f'unknown step "{req}"'))
                elif req == step["name"]:
                    errors.append(SchemaError(f"{where}.requires[{j}]", "a step cannot require itself"))
            if "when" in step:
                errors.extend(expression_errors(step["when"], f"{where}.when"))
            errors.extend(template_errors(step.get("with"), f"{where}.with"))
            errors.extend(template_errors((step.get("on_failure") or {}).get("with"), f"{where}.on_failure.with"))
            errors.extend(_waiting_errors(step, where))
            for at, action in (
                (f"{where}.action", step.get("action")),
                (f"{where}.on_failure.action", (step.get("on_failure") or {}).get("action")),
            ):
                errors.extend(
                    SchemaError(bad, "a secret reference is {secret: NAME}, NAME of letters, digits, _ . -")
                    for bad in malformed_references((action or {}).get("options"), f"{at}.options")
                )
    return errors


#: What only a step that runs something has: a waiting step has its own timeout and nothing to retry or undo.
_RUNNING_ONLY = ("type", "with", "timeout", "retries", "on_failure")


def _waiting_errors(step: dict[str, Any], where: str) -> list[SchemaError]:
    """The checks of an approval, wait_for or sleep step the JSON Schema cannot make."""
    kind = next((k for k in ("approval", "wait_for", "sleep") if k in step), None)
    if kind is None:
        return []
    errors = [
        SchemaError(f"{where}.{field}", f"does not apply to a {kind} step (it runs nothing; see docs/waiting-steps.md)")
        for field in _RUNNING_ONLY
        if field in step
    ]
    spec = step[kind]
    if kind == "approval":
        errors.extend(template_errors(spec.get("message"), f"{where}.approval.message"))
    elif kind == "wait_for":
        errors.extend(filter_errors(spec.get("filter"), f"{where}.wait_for.filter"))
        errors.extend(template_errors(spec.get("correlate"), f"{where}.wait_for.correlate"))
    else:
        errors.extend(template_errors(spec.get("until"), f"{where}.sleep.until"))
    return errors


def _trigger_errors(doc: dict[str, Any]) -> list[SchemaError]:
    trigger = doc.get("trigger")
    located = (
        [("trigger", trigger)]
        if isinstance(trigger, dict)
        else [(f"trigger[{i}]", t) for i, t in enumerate(trigger or [])]
    )
    errors: list[SchemaError] = []
    for where, t in located:
        zone: ZoneInfo | None = ZoneInfo("UTC")
        try:
            zone = ZoneInfo(t.get("timezone", "UTC"))
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder name, or one too long
            zone = None
        if "cron" in t and (why := cron_error(t["cron"], zone or ZoneInfo("UTC"))) is not None:
            errors.append(SchemaError(f"{where}.cron", why))
        if zone is None:
            errors.append(SchemaError(f"{where}.timezone", f"unknown time zone {t['timezone']!r}"))
        errors.extend(filter_errors(t.get("filter"), f"{where}.filter"))
        errors.extend(template_errors(t.get("input"), f"{where}.input"))
        errors.extend(_kept_errors(t, where))
    return errors


def _kept_errors(trigger: dict[str, Any], where: str) -> list[SchemaError]:
    """`resolved_while_queued: keep` only where a queue is and a resolution reaches it."""
    if trigger.get("resolved_while_queued") != "keep":
        return []
    if not any(part in trigger for part in ("concurrency", "throttle", "debounce", "batch")):
        why = "keep needs a lane to wait in: give the trigger concurrency, throttle, debounce or batch"
        return [SchemaError(f"{where}.resolved_while_queued", why)]
    on_resolved = trigger.get("on_resolved", "signal")
    if on_resolved not in ("signal", "cancel"):
        why = (
            f"keep has no effect with on_resolved: {on_resolved} (only signal and cancel bring a resolution to a lane)"
        )
        return [SchemaError(f"{where}.resolved_while_queued", why)]
    return []


def _inputs_errors(doc: dict[str, Any]) -> list[SchemaError]:
    return inputs_schema_errors(doc["inputs"]) if "inputs" in doc else []


def dependency_cycle(requires: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle in `requires` (step → the steps it waits for) as the names along it, the first
    repeated at the end; None without one. Walked with an explicit stack: no depth limit."""
    done: set[str] = set()
    for start in requires:
        if start in done:
            continue
        trail: list[str] = [start]
        on_trail = {start}
        pending = [iter(requires.get(start, ()))]
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                pending.pop()
                done.add(trail[-1])
                on_trail.discard(trail.pop())
            elif dep in on_trail:
                return [*trail[trail.index(dep) :], dep]
            elif dep not in done:
                trail.append(dep)
                on_trail.add(dep)
                pending.append(iter(requires.get(dep, ())))
    return None


def _cycle_errors(doc: dict[str, Any]) -> list[SchemaError]:
    requires = dependency_graph(
        [(s["name"], s.get("requires")) for s in doc.get("steps") or []],
        [(s["name"], s.get("requires")) for s in doc.get("parallel") or []],
    )
    cycle = dependency_cycle(requires)
    if cycle is None:
        return []
    return [SchemaError("requires", "dependency cycle: " + " -> ".join(f'"{c}"' for c in cycle))]


def parse_definition(
    doc: Any,
    *,
    agents: Collection[str] | None = None,
    checks: Callable[[WorkflowDefinition], list[SchemaError]] | None = None,
) -> WorkflowDefinition:
    """Validate a loaded YAML/JSON document and build the definition; raises `DefinitionError`
    listing every problem. With `agents`, steps naming any other agent are errors too; `checks`
    add the caller's own (agents per team, topics), listed with the rest."""
    errors = validate("workflow", doc, limit=50)
    if errors:
        raise DefinitionError(errors)
    errors = _trigger_errors(doc) + _step_errors(doc) + _inputs_errors(doc)
    if not errors:
        errors = _cycle_errors(doc)
    trigger = doc.get("trigger")
    triggers = [trigger] if isinstance(trigger, dict) else (trigger or [])
    team = doc.get("team_id")
    named_team, local_id = split_id(doc.get("id") or slugify(doc["name"]))
    if TEAM_SEPARATOR in doc.get("id", ""):
        if team is None:
            team = None if named_team == DEFAULT_TEAM else named_team
        elif named_team != team:
            errors.append(SchemaError("id", f'the id names team "{named_team}", but team_id is "{team}"'))
    try:
        definition = WorkflowDefinition.model_validate(
            {**doc, "id": qualified_id(team, local_id), "team_id": team, "trigger": triggers}
        )
    except ValidationError as exc:
        # What the JSON Schema lets through and the typed model still refuses (an integral float
        # where the model wants an int) is the author's error too, with its location, never a 500.
        raise DefinitionError(
            errors + [SchemaError(location(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        ) from None
    if agents is not None:
        errors.extend(agent_errors(definition, agents))
    if checks is not None:
        errors.extend(checks(definition))
    if errors:
        raise DefinitionError(errors)
    return definition
