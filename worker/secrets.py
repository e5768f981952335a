"""The worker's secrets: what `{secret: NAME}` in an inline action turns into, just before the
step runs (the reference is what travels through Temporal's history; the value stays here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.secrets import SecretRef, is_reference
from worker.errors import config_error

__all__ = ["ENV_PREFIX", "Secrets"]

#: A secret NAME is also read from the worker's environment as HOOKLINE_SECRET_<NAME> (upper case,
#: `.` and `-` as `_`).
ENV_PREFIX = "HOOKLINE_SECRET_"


@dataclass(frozen=True)
class Secrets:
    """Secrets from `folder` (one file per name, a trailing newline dropped), then the environment."""

    folder: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        if self.folder is not None:
            path = self.folder / name  # NAME has no "/" and cannot start with ".": stays in the folder
            if path.is_file():
                return path.read_text().removesuffix("\n")
        variable = ENV_PREFIX + name.upper().replace(".", "_").replace("-", "_")
        if variable in self.environ:
            return self.environ[variable]
        raise config_error(
            f"secret {name!r} is not configured on this worker (a file in worker.secrets_dir, or {variable})"
        )

    def resolve(self, value: Any) -> Any:
        """`value` with every `{secret: NAME}` (a `SecretRef` or its dict form) replaced by the secret."""
        if isinstance(value, SecretRef):
            return self.value(value.secret)
        if is_reference(value):
            return self.value(value["secret"])
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.resolve(v) for v in value)
        return value
