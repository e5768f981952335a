"""Runner plug-ins: built-ins registered explicitly, third parties via `hookline.runners`."""

from __future__ import annotations

from worker.runners.base import Runner, StepFailed
from worker.runners.shell import ShellRunner

__all__ = ["Runner", "ShellRunner", "StepFailed"]
