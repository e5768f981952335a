"""Worker settings: the shared sections plus `worker:`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from temporalio.worker import PollerBehaviorSimpleMaximum

from hookline.settings import ComponentSettings, Section
from worker.runners.registry import RunnerRegistry

__all__ = ["WorkerOptions", "WorkerSettings"]


class WorkerOptions(Section):
    host: str = "127.0.0.1"
    port: int | None = Field(
        8082, ge=0, le=65535, description="/healthz and /readyz (0: any free port; null: not served)."
    )
    runners: list[str] = Field(
        default_factory=lambda: ["shell"],
        description="Runner kinds this process serves: every pool their agents name, and the pool named "
        "after the kind.",
    )
    workflows: bool = Field(True, description="Also run the interpreter workflow task queue.")
    max_concurrent_activities: int = Field(32, ge=1)
    max_concurrent_workflow_tasks: int = Field(
        100,
        ge=2,
        description="Workflow task slots of the interpreter (the SDK's default). Each of its "
        "`workflow_task_pollers` holds one while it waits for a task, so it must have more; the starts of "
        "`triggers.interpreter` wait for one of the rest (docs/triggers.md).",
    )
    workflow_task_pollers: int = Field(
        10,
        ge=2,
        description="Concurrent polls for the interpreter's workflow tasks, sticky and not (the SDK's default "
        "is 5; bench/runs.py).",
    )
    nonsticky_poll_ratio: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Polls of the shared workflow task queue, where every new run's first task waits, as a "
        "ratio of the polls of this worker's sticky queue (the SDK's default is 0.2: one shared poll in five, "
        "which bounds how fast runs of one workflow task, such as runs of local steps, begin).",
    )
    workflow_sandbox: bool = Field(
        False,
        description="Run the interpreter workflow in Temporal's sandbox, which re-imports its module "
        "for every run (a guard against non-deterministic workflow code, at about 40 % of the worker's "
        "CPU). Off: the interpreter is Hookline's own, and the test suite replays its histories in the "
        "sandbox.",
    )
    output_cap_bytes: int = Field(64 * 1024, ge=1024, description="Step output kept beyond this is cut.")
    graceful_shutdown_s: float = Field(10.0, ge=0)
    inline_runners: list[str] = Field(
        default_factory=list,
        description="Runner kinds that may run inline `action`s written in definitions. Off by default: "
        "whoever may write definitions could otherwise run any command on this worker.",
    )
    inherit_env: list[str] = Field(
        default_factory=lambda: ["PATH", "LANG", "LC_ALL", "HOME", "TZ"],
        description="Allow-list: the worker's environment variables a local step (shell, sandbox) "
        "inherits. Everything else a step sees is set per agent (`env`).",
    )
    secrets_dir: Path | None = Field(
        None,
        description="Where `{secret: NAME}` in inline actions is read from: the file NAME in this folder; "
        "otherwise the worker's environment variable HOOKLINE_SECRET_<NAME>.",
    )
    runner_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per runner kind, its worker-side settings (e.g. http.allow, ssh.known_hosts, "
        "container.docker_url); each runner validates its own section (docs/runners.md).",
    )

    def workflow_polling(self) -> dict[str, Any]:
        """The interpreter worker's workflow task polling, as options of `temporalio.worker.Worker`."""
        return {
            "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(self.workflow_task_pollers),
            "nonsticky_to_sticky_poll_ratio": self.nonsticky_poll_ratio,
        }

    @model_validator(mode="after")
    def _slots_beyond_polls(self) -> WorkerOptions:
        if self.max_concurrent_workflow_tasks <= self.workflow_task_pollers:
            raise ValueError(
                f"max_concurrent_workflow_tasks ({self.max_concurrent_workflow_tasks}) must be more than "
                f"workflow_task_pollers ({self.workflow_task_pollers}): each poll holds a workflow task slot"
            )
        return self

    @field_validator("runners", "inline_runners")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        # At start-up, before connecting anywhere: `hookline worker --runner typo` stops at once.
        available = RunnerRegistry.installed_names()
        unknown = [k for k in kinds if k not in available]
        if unknown:
            raise ValueError(f"unknown runner(s) {', '.join(unknown)}; available: {', '.join(available)}")
        return kinds


class WorkerSettings(ComponentSettings):
    worker: WorkerOptions = WorkerOptions()
