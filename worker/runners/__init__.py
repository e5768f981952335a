"""Runner plug-ins: built-ins registered explicitly, third parties via `hookline.runners`.

The built-in runner modules are imported only when their kind is served (see `registry`)."""

from __future__ import annotations

from worker.errors import RegistryError, StepFailed, config_error
from worker.runners.base import (
    OutputBuffer,
    Runner,
    RunnerContext,
    RunnerFactory,
    RunnerOptions,
    parse_options,
    step_context,
    step_env,
)
from worker.runners.registry import ENTRY_POINT_GROUP, RunnerRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "OutputBuffer",
    "RegistryError",
    "Runner",
    "RunnerContext",
    "RunnerFactory",
    "RunnerOptions",
    "RunnerRegistry",
    "StepFailed",
    "config_error",
    "parse_options",
    "step_context",
    "step_env",
]
