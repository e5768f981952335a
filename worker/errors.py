"""Errors of the worker: one base, and the typed step failures every runner raises (built here,
so each kind of failure reads the same whichever runner reports it)."""

from __future__ import annotations

import signal

__all__ = [
    "PoolNotServed",
    "RegistryError",
    "StepFailed",
    "WorkerError",
    "config_error",
    "exit_failure",
    "inline_refused",
    "killed_by",
    "timed_out",
]


class WorkerError(Exception):
    """Base of the worker's errors."""


class RegistryError(WorkerError, ValueError):
    """A runner kind is registered twice, cannot be loaded, or is not registered at all."""


class PoolNotServed(WorkerError, ValueError):
    """A pool this worker would poll has agents of a runner kind it does not serve."""


class StepFailed(WorkerError):
    """The step ran and failed. `kind` is the error type a definition's
    `retries.non_retryable_errors` can name (e.g. "ExitCode", "Timeout"); `retryable=False`
    means running it again cannot help (bad configuration), whatever the retry policy says."""

    def __init__(self, message: str, *, retryable: bool, output: str = "", kind: str = "StepFailed") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.output = output
        self.kind = kind


def config_error(message: str) -> StepFailed:
    """A fault in the agent's configuration: never retried."""
    return StepFailed(message, retryable=False, kind="Config")


def inline_refused(kind: str, option: str, value: object, policy: str, allowed: object) -> StepFailed:
    """An inline action's option beyond what the worker allows definitions (a Config error)."""
    return config_error(
        f"inline action option {option}={value!r} exceeds this worker's policy "
        f"worker.runner_settings.{kind}.inline.{policy} (allowed: {allowed!r}); use an agent configured by the "
        "operator, or have the operator widen the policy"
    )


def timed_out(seconds: float) -> StepFailed:
    """The step ran over its timeout (and what it started has been stopped): retryable."""
    return StepFailed(f"timed out after {seconds:g}s", retryable=True, kind="Timeout")


def killed_by(signal_name: str, output: str) -> StepFailed:
    """The step's process died of a signal: retryable."""
    return StepFailed(f"killed by signal {signal_name}", retryable=True, output=output, kind="Killed")


def exit_failure(code: int, output: str, non_retryable: list[int]) -> StepFailed:
    """A non-zero exit as a typed failure: `ExitCode` for a code (final if listed in
    `non_retryable`), `Killed` for a negative one (a signal, as subprocess reports it)."""
    if code < 0:
        return killed_by(signal.Signals(-code).name if -code in signal.valid_signals() else str(-code), output)
    return StepFailed(f"exited with code {code}", retryable=code not in non_retryable, output=output, kind="ExitCode")
