"""Runner plug-ins: built-ins registered explicitly, third parties via `hookline.runners`.

What a runner kind needs is exported here: the contract (`Runner`, `InlineCapped`,
`RunnerFactory`, `RunnerContext`), its options (`RunnerOptions`, `agent_options`,
`runner_settings`, or all of it at once by `ConfiguredRunner`), the step's data and output
(`step_context`, `step_env`, `OutputBuffer`) and its typed failures (`StepFailed` and the
helpers that build the common ones).

The built-in runner modules are imported only when their kind is served (see `registry`)."""

from __future__ import annotations

from worker.errors import (
    RegistryError,
    StepFailed,
    config_error,
    exit_failure,
    inline_refused,
    killed_by,
    timed_out,
)
from worker.runners.base import (
    ConfiguredRunner,
    InlineCapped,
    OutputBuffer,
    Runner,
    RunnerContext,
    RunnerFactory,
    RunnerOptions,
    agent_options,
    matches_any,
    parse_options,
    require_command,
    runner_settings,
    step_context,
    step_env,
)
from worker.runners.registry import ENTRY_POINT_GROUP, RunnerRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConfiguredRunner",
    "InlineCapped",
    "OutputBuffer",
    "RegistryError",
    "Runner",
    "RunnerContext",
    "RunnerFactory",
    "RunnerOptions",
    "RunnerRegistry",
    "StepFailed",
    "agent_options",
    "config_error",
    "exit_failure",
    "inline_refused",
    "killed_by",
    "matches_any",
    "parse_options",
    "require_command",
    "runner_settings",
    "step_context",
    "step_env",
    "timed_out",
]
