"""The runner plug-in contract."""

from __future__ import annotations

from typing import Protocol

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult

__all__ = ["Runner", "StepFailed"]


class StepFailed(Exception):
    """The step ran and failed. `kind` is the error type a definition's
    `retries.non_retryable_errors` can name (e.g. "ExitCode", "Timeout"); `retryable=False`
    means running it again cannot help (bad configuration), whatever the retry policy says."""

    def __init__(self, message: str, *, retryable: bool, output: str = "", kind: str = "StepFailed") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.output = output
        self.kind = kind


class Runner(Protocol):
    """Runs one step of an agent. Must honour cancellation (asyncio.CancelledError) and call
    `heartbeat()` while it runs so a dead worker is noticed."""

    kind: str

    async def run(self, agent: Agent, request: StepRequest) -> StepResult: ...
