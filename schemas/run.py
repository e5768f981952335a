"""What crosses Temporal: a run request (the pinned definition plus its input) and step results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Event
from schemas.workflow import WorkflowDefinition

__all__ = ["WORKFLOW_NAME", "RunRequest", "RunState", "StepRequest", "StepResult", "StepState"]

WORKFLOW_NAME = "HooklineRun"


class RunRequest(BaseModel):
    """The workflow argument. The definition travels in it, so a run keeps the version it started with."""

    model_config = ConfigDict(frozen=True)

    definition_id: str
    definition_version: int
    definition: WorkflowDefinition
    input: dict[str, Any] = Field(default_factory=dict)
    event: Event | None = None
    # agent name → task queue of the runner pool that serves it, resolved when the run starts.
    queues: dict[str, str] = Field(default_factory=dict)


class StepRequest(BaseModel):
    """The activity argument: which agent to run and the data it gets (never spliced into argv)."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    step: str
    agent: str
    input: dict[str, Any] = Field(default_factory=dict)
    event: Event | None = None


class StepResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    exit_code: int = 0
    output: str = ""
    output_truncated: bool = False


class StepState(BaseModel):
    status: Literal["pending", "running", "succeeded", "failed", "skipped"] = "pending"
    error: str | None = None
    output: str | None = None


class RunState(BaseModel):
    definition_id: str
    definition_version: int
    status: Literal["running", "succeeded", "failed"] = "running"
    steps: dict[str, StepState] = Field(default_factory=dict)
