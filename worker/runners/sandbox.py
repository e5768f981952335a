"""The sandbox runner: the shell contract under bubblewrap. The step sees the system read-only
(/usr, /lib*, and only the entries of /etc that programs need), a private empty /tmp, its
working directory (read-only unless allowed), no network unless allowed, no capabilities, and
its own PID/IPC/UTS namespaces; nothing else of the machine."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import config_error, inline_refused
from worker.runners.base import RunnerContext, RunnerOptions, agent_options, require_command, runner_settings
from worker.runners.shell import ProcessRunner, ShellOptions

__all__ = [
    "ETC_PATHS",
    "SYSTEM_PATHS",
    "SandboxInlinePolicy",
    "SandboxOptions",
    "SandboxRunner",
    "SandboxSettings",
]

#: The entries of /etc that programs need (dynamic loader, users and groups, name resolution,
#: TLS roots, time zone). Never all of /etc: it holds secrets (ssh client keys, TLS private keys
#: under /etc/ssl/private, service credentials) that a step must not read.
ETC_PATHS = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/localtime",
)

#: Read-only in every sandbox: what programs need to run (missing ones are skipped).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", *ETC_PATHS)


class SandboxOptions(ShellOptions):
    """Agent `options:` of the sandbox runner."""

    network: bool = Field(False, description="Share the worker's network; off: only an isolated loopback.")
    writable_workdir: bool = Field(False, description="Mount the working directory read-write.")
    read_only_paths: list[Path] = Field(default_factory=list, description="More host paths to show, read-only.")


class SandboxInlinePolicy(RunnerOptions):
    """What inline actions (written in definitions) may ask of the sandbox runner. Their working
    directory is always an empty one of their own, so it may be writable."""

    network: bool = Field(False, description="Whether they may share the worker's network.")
    read_only_paths: list[Path] = Field(
        default_factory=list, description="Host paths they may show (each with what is under it), read-only."
    )


class SandboxSettings(RunnerOptions):
    """Worker `runner_settings.sandbox:`."""

    bwrap: str = Field("bwrap", description="The bubblewrap binary (Debian package bubblewrap).")
    system_paths: list[Path] = Field(default_factory=lambda: [Path(p) for p in SYSTEM_PATHS])
    inline: SandboxInlinePolicy = Field(default_factory=SandboxInlinePolicy)


class SandboxRunner(ProcessRunner[SandboxOptions]):
    kind: ClassVar[str] = "sandbox"

    def __init__(self, *, output_cap_bytes: int, base_env: dict[str, str], settings: SandboxSettings) -> None:
        super().__init__(output_cap_bytes=output_cap_bytes, base_env=base_env)
        self._settings = settings

    @classmethod
    def create(cls, context: RunnerContext) -> SandboxRunner:
        settings = runner_settings(SandboxSettings, context, "sandbox")
        return cls(output_cap_bytes=context.output_cap_bytes, base_env=dict(context.inherited_env), settings=settings)

    def check(self, agent: Agent) -> SandboxOptions:
        options = agent_options(SandboxOptions, agent)
        require_command(agent)
        if shutil.which(self._settings.bwrap) is None:
            raise config_error(f"bubblewrap ({self._settings.bwrap!r}) is not installed on this worker")
        for path in options.read_only_paths:
            if not path.is_absolute():
                raise config_error(f"agent {agent.name!r} options.read_only_paths: {str(path)!r} is not absolute")
        if agent.workdir is not None and not agent.workdir.is_absolute():
            raise config_error(f"agent {agent.name!r} needs an absolute workdir for the sandbox")
        return options

    def check_inline(self, agent: Agent, options: SandboxOptions) -> None:
        policy = self._settings.inline
        if options.network and not policy.network:
            raise inline_refused(self.kind, "network", True, "network", False)
        # Resolved: a symlink under an allowed path must not lead out of it.
        allowed = [p.resolve() for p in policy.read_only_paths]
        for path in options.read_only_paths:
            if not any(path.resolve().is_relative_to(root) for root in allowed):
                shown = [str(p) for p in policy.read_only_paths]
                raise inline_refused(self.kind, "read_only_paths", str(path), "read_only_paths", shown)

    async def run(self, agent: Agent, options: SandboxOptions, request: StepRequest) -> StepResult:
        if agent.workdir is not None:
            return await super().run(agent, options, request)
        # No working directory (an inline action): an empty one of the step's own, removed after
        # it, so nothing of the worker's current directory is shown.
        with tempfile.TemporaryDirectory(prefix="hookline-step-") as scratch:
            return await super().run(agent.model_copy(update={"workdir": Path(scratch)}), options, request)

    def argv(self, agent: Agent, options: SandboxOptions) -> list[str]:
        workdir = str(agent.workdir)  # absolute: `check` ran first, `run` made one if none
        args = [self._settings.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if options.network:
            args.append("--share-net")
        for path in [*self._settings.system_paths, *options.read_only_paths]:
            args += ["--ro-bind-try", str(path), str(path)]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 - an empty tmpfs of the sandbox's own
        args += ["--bind" if options.writable_workdir else "--ro-bind", workdir, workdir, "--chdir", workdir]
        return [*args, "--", *agent.command]
