"""An example third-party Hookline runner: a step calls an async Python function.

An agent names the function in `options.callable` ("package.module:function"); it gets the step
context (`workflow_id`, `step`, `compensation`, `input`, `event`) and returns something JSON can
hold, which becomes the step's output. Install this package next to Hookline and serve it with
`hookline worker --runner python`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from pydantic import Field

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.runners import (
    OutputBuffer,
    RunnerContext,
    RunnerOptions,
    StepFailed,
    agent_options,
    config_error,
    step_context,
    timed_out,
)

__all__ = ["PythonOptions", "PythonRunner", "create"]

StepFunction = Callable[[dict[str, Any]], Awaitable[Any]]


class PythonOptions(RunnerOptions):
    """Agent `options:`: which function runs the step."""

    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PythonRunner:
    kind: ClassVar[str] = "python"

    def __init__(self, output_cap_bytes: int) -> None:
        self._cap = output_cap_bytes

    def check(self, agent: Agent) -> StepFunction:
        """The function the agent names, imported: what `run` gets for the agent."""
        options = agent_options(PythonOptions, agent)
        module_name, _, name = options.callable.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise config_error(f"agent {agent.name!r}: cannot import {options.callable!r}: {exc}") from None
        if not inspect.iscoroutinefunction(function):
            raise config_error(f"agent {agent.name!r}: {options.callable!r} is not an async function")
        step_function: StepFunction = function
        return step_function

    async def run(self, agent: Agent, function: StepFunction, request: StepRequest) -> StepResult:
        try:
            # Cancellation arrives here as asyncio.CancelledError and simply propagates.
            async with asyncio.timeout(agent.timeout_s):
                value = await function(step_context(request))
        except TimeoutError:
            raise timed_out(agent.timeout_s) from None
        except StepFailed:
            raise
        except Exception as exc:  # the step's own failure, reported like a non-zero exit
            raise StepFailed(f"{type(exc).__name__}: {exc}", retryable=True, kind="PythonError") from None
        output = OutputBuffer(self._cap)
        output.add((value if isinstance(value, str) else json.dumps(value)).encode())
        return StepResult(output=output.text(), output_truncated=output.truncated)

    async def close(self) -> None:
        """Nothing to release."""


def create(context: RunnerContext) -> PythonRunner:
    """The `hookline.runners` entry point."""
    return PythonRunner(context.output_cap_bytes)
