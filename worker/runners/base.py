"""The runner plug-in contract: what a runner kind provides and the helpers every runner shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from hookline.tracing import current_traceparent
from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import config_error

__all__ = [
    "ConfiguredRunner",
    "InlineCapped",
    "OutputBuffer",
    "Runner",
    "RunnerContext",
    "RunnerFactory",
    "RunnerOptions",
    "agent_options",
    "matches_any",
    "parse_options",
    "require_command",
    "runner_settings",
    "step_context",
    "step_env",
]

ModelT = TypeVar("ModelT", bound=BaseModel)
OptionsT = TypeVar("OptionsT")
OptionsT_contra = TypeVar("OptionsT_contra", contravariant=True)
SettingsT = TypeVar("SettingsT", bound="RunnerOptions")
OptionsModelT = TypeVar("OptionsModelT", bound="RunnerOptions")


class RunnerOptions(BaseModel):
    """Base of a runner's option models (agent `options:` and worker `runner_settings.<kind>`):
    unknown keys are errors, so a misspelt option fails the step instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_options(model: type[ModelT], raw: Mapping[str, Any], where: str) -> ModelT:
    """`raw` validated as `model`; a `StepFailed` of kind Config naming each bad key otherwise."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(options)'}: {e['msg']}" for e in exc.errors())
        raise config_error(f"{where}: {problems}") from None


def agent_options(model: type[ModelT], agent: Agent) -> ModelT:
    """The agent's `options:` as a runner's model; a config error names the agent."""
    return parse_options(model, agent.options, f"agent {agent.name!r} options")


def runner_settings(model: type[ModelT], context: RunnerContext, kind: str) -> ModelT:
    """The worker's `runner_settings.<kind>` as a runner's model."""
    return parse_options(model, context.settings, f"worker.runner_settings.{kind}")


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """Whether `value` matches one of the shell-style `patterns` (fnmatch, case-sensitive)."""
    return any(fnmatchcase(value, p) for p in patterns)


def require_command(agent: Agent) -> None:
    """A Config error unless the agent has a command to run."""
    if not agent.command:
        raise config_error(f"agent {agent.name!r} has no command")


class Runner(Protocol[OptionsT]):
    """Runs one step of an agent.

    - `check(agent)` validates the agent's runner-specific configuration and returns its options
      parsed (`OptionsT`, usually the kind's `RunnerOptions` model of `agent.options`), or raises
      `StepFailed(kind="Config", retryable=False)`. The worker calls it once per step, before
      `run`, and at start-up for every configured agent.
    - `run(agent, options, request)` gets what `check` returned for that agent (it does not check
      or parse again) and returns a `StepResult` or raises `StepFailed`. It keeps at most the
      worker's output cap, stops what it started (process, container, job) on
      `asyncio.CancelledError` and on its timeout (`agent.timeout_s`), then re-raises / reports
      `timed_out`. The activity around it heartbeats while it runs; that is how a cancellation
      reaches it.
    - `close()` releases the clients the runner opened (it opens them lazily, on first use).
    """

    @property
    def kind(self) -> str:
        """The name the kind is registered under."""
        ...

    def check(self, agent: Agent) -> OptionsT: ...

    async def run(self, agent: Agent, options: OptionsT, request: StepRequest) -> StepResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class InlineCapped(Protocol[OptionsT_contra]):
    """A runner whose options can reach beyond the step (host network, privileges, host paths,
    other identities). Options written in a definition's inline action (as `check` returned
    them) are checked by `check_inline` against the kind's `runner_settings.<kind>.inline`
    policy before the step runs; an agent's options (the operator's own configuration) are not."""

    def check_inline(self, agent: Agent, options: OptionsT_contra) -> None: ...


@dataclass(frozen=True)
class RunnerContext:
    """What the worker hands a runner kind's factory: its settings section (unvalidated; the
    factory validates it), the output cap, and the worker environment variables a step may
    inherit (already filtered by the allow-list)."""

    output_cap_bytes: int = 64 * 1024
    settings: Mapping[str, Any] = field(default_factory=dict)
    inherited_env: Mapping[str, str] = field(default_factory=dict)


class ConfiguredRunner(Generic[SettingsT, OptionsModelT]):
    """Base of the runner kinds with a section of worker settings and an options model
    (container, kubernetes, ssh, http): how one is built from the worker's context (its
    `runner_settings.<kind>` validated once, then) and how an agent is checked, written once.
    A kind names its two models; `check` parses the agent's options and requires a command,
    and a kind with more (or other) to check overrides it."""

    kind: ClassVar[str]
    settings_model: type[SettingsT]
    options_model: type[OptionsModelT]

    def __init__(self, *, output_cap_bytes: int, settings: SettingsT) -> None:
        self._cap = output_cap_bytes
        self._settings = settings

    @classmethod
    def create(cls, context: RunnerContext) -> Self:
        settings = runner_settings(cls.settings_model, context, cls.kind)
        return cls(output_cap_bytes=context.output_cap_bytes, settings=settings)

    def check(self, agent: Agent) -> OptionsModelT:
        options = agent_options(self.options_model, agent)
        require_command(agent)
        return options


class RunnerFactory(Protocol):
    """An entry point of the `hookline.runners` group: builds the runner from the worker's context."""

    def __call__(self, context: RunnerContext) -> Runner[Any]: ...


class OutputBuffer:
    """Keeps the first `cap` bytes of a step's output and remembers whether more came."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._kept = bytearray()
        self.truncated = False

    @property
    def full(self) -> bool:
        return len(self._kept) >= self.cap

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self._kept)
        if room > 0:
            self._kept += chunk[:room]
        if len(chunk) > room:
            self.truncated = True

    def text(self) -> str:
        return self._kept.decode(errors="replace")


def step_context(request: StepRequest) -> dict[str, Any]:
    """What a step gets as data (stdin, request body, an environment variable): never argv."""
    return {
        "workflow_id": request.workflow_id,
        "step": request.step,
        "compensation": request.compensation,
        "input": request.input,
        "event": request.event.model_dump(mode="json") if request.event else None,
        "events": [event.model_dump(mode="json") for event in request.events],
    }


def step_env(agent: Agent, request: StepRequest, *, with_context: bool = False) -> dict[str, str]:
    """The agent's environment plus the `HOOKLINE_*` variables (and `TRACEPARENT` when tracing);
    with `with_context`, also the step context as JSON in HOOKLINE_CONTEXT (for back ends
    without a stdin)."""
    env = {
        **agent.env,
        "HOOKLINE_STEP": request.step,
        "HOOKLINE_WORKFLOW_ID": request.workflow_id,
        "HOOKLINE_AGENT": agent.name,
        "HOOKLINE_COMPENSATION": "1" if request.compensation else "0",
    }
    if with_context:
        env["HOOKLINE_CONTEXT"] = orjson.dumps(step_context(request)).decode()
    if (traceparent := current_traceparent()) is not None:
        env["TRACEPARENT"] = traceparent  # the step's own trace context (hookline.tracing)
    return env
