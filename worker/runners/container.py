"""The container runner: runs the agent's argv in a fresh container through the Docker Engine
API (Docker, or Podman's compatible service), with the step context on stdin. The container
has no network unless the agent names one, and is removed whatever happens: success, failure,
timeout or cancellation. It has no capabilities, cannot gain privileges and has a process limit,
unless the agent relaxes them. Output (stdout and stderr, as they interleave) is capped."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar, Literal

import aiodocker
import aiohttp
import orjson
from aiodocker.containers import DockerContainer
from pydantic import Field

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import StepFailed, config_error, exit_failure, inline_refused, timed_out
from worker.runners.base import ConfiguredRunner, OutputBuffer, RunnerOptions, step_context, step_env

__all__ = ["ContainerInlinePolicy", "ContainerOptions", "ContainerRunner", "ContainerSettings"]


class ContainerOptions(RunnerOptions):
    """Agent `options:` of the container runner."""

    image: str = Field(min_length=1)
    pull: Literal["missing", "never"] = Field("missing", description="Pull the image when it is not there.")
    network: str = Field("none", description='Network mode: "none" (default), "bridge", "host", or a network name.')
    user: str | None = None
    workdir: str | None = Field(None, description="Working directory inside the container.")
    memory_bytes: int | None = Field(None, gt=0)
    cpus: float | None = Field(None, gt=0)
    read_only: bool = Field(False, description="Read-only root filesystem.")
    cap_add: list[str] = Field(
        default_factory=list, description="Capabilities to give back (e.g. NET_BIND_SERVICE); all are dropped."
    )
    no_new_privileges: bool = Field(True, description="false: setuid programs may raise the step's privileges.")
    pids_limit: int | None = Field(512, gt=0, description="Most processes at once; null: the engine's default.")
    non_retryable_exit_codes: list[int] = Field(default_factory=list)


class ContainerInlinePolicy(RunnerOptions):
    """What inline actions (written in definitions) may ask of the container runner."""

    networks: list[str] = Field(
        default_factory=lambda: ["none"],
        description='Network modes allowed (never "host" or "container:<id>" unless listed).',
    )
    cap_add: list[str] = Field(default_factory=list, description="Capabilities that may be given back.")
    new_privileges: bool = Field(False, description="Whether no_new_privileges may be turned off.")
    max_pids: int = Field(512, gt=0, description="Highest pids_limit (and no unlimited one).")


class ContainerSettings(RunnerOptions):
    """Worker `runner_settings.container:`."""

    docker_url: str = Field("unix:///var/run/docker.sock", description="Docker Engine API endpoint.")
    inline: ContainerInlinePolicy = Field(default_factory=ContainerInlinePolicy)


def _capabilities(names: list[str]) -> set[str]:
    # Docker takes "NET_ADMIN" and "CAP_NET_ADMIN" alike, in any case.
    return {n.upper().removeprefix("CAP_") for n in names}


def _spec(agent: Agent, request: StepRequest, options: ContainerOptions) -> dict[str, Any]:
    host: dict[str, Any] = {
        "NetworkMode": options.network,
        "ReadonlyRootfs": options.read_only,
        # Least privilege unless the agent asks: no capabilities (not even the engine's default
        # set), no gaining privileges through setuid binaries, and no fork bomb starving the host.
        "CapDrop": ["ALL"],
        "CapAdd": list(options.cap_add),
    }
    if options.no_new_privileges:
        host["SecurityOpt"] = ["no-new-privileges"]
    if options.pids_limit:
        host["PidsLimit"] = options.pids_limit
    if options.memory_bytes:
        host["Memory"] = options.memory_bytes
    if options.cpus:
        host["NanoCpus"] = int(options.cpus * 1e9)
    spec: dict[str, Any] = {
        "Image": options.image,
        "Cmd": list(agent.command),
        "Env": [f"{k}={v}" for k, v in step_env(agent, request).items()],
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "Labels": {"hookline.workflow_id": request.workflow_id, "hookline.step": request.step},
        "HostConfig": host,
    }
    if options.user:
        spec["User"] = options.user
    if options.workdir:
        spec["WorkingDir"] = options.workdir
    return spec


class ContainerRunner(ConfiguredRunner[ContainerSettings, ContainerOptions]):
    kind: ClassVar[str] = "container"
    settings_model = ContainerSettings
    options_model = ContainerOptions

    def __init__(self, *, output_cap_bytes: int, settings: ContainerSettings) -> None:
        super().__init__(output_cap_bytes=output_cap_bytes, settings=settings)
        self._docker: aiodocker.Docker | None = None

    def check_inline(self, agent: Agent, options: ContainerOptions) -> None:
        policy = self._settings.inline
        if options.network not in policy.networks:
            raise inline_refused(self.kind, "network", options.network, "networks", policy.networks)
        if extra := sorted(_capabilities(options.cap_add) - _capabilities(policy.cap_add)):
            raise inline_refused(self.kind, "cap_add", extra, "cap_add", policy.cap_add)
        if not options.no_new_privileges and not policy.new_privileges:
            raise inline_refused(self.kind, "no_new_privileges", False, "new_privileges", False)
        if options.pids_limit is None or options.pids_limit > policy.max_pids:
            raise inline_refused(self.kind, "pids_limit", options.pids_limit, "max_pids", policy.max_pids)

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._settings.docker_url)
        return self._docker

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    async def run(self, agent: Agent, options: ContainerOptions, request: StepRequest) -> StepResult:
        container: DockerContainer | None = None
        try:
            async with asyncio.timeout(agent.timeout_s):
                container = await self._create(agent, request, options)
                output, code = await self._attach_and_wait(container, request)
        except TimeoutError:
            raise timed_out(agent.timeout_s) from None
        except aiodocker.DockerError as exc:
            raise StepFailed(
                f"container engine: {exc.message} ({exc.status})", retryable=exc.status >= 500, kind="Engine"
            ) from None
        except OSError as exc:  # the engine's socket is not there
            raise StepFailed(f"container engine unreachable: {exc}", retryable=True, kind="Engine") from None
        finally:
            if container is not None:
                await self._remove(container)
        if code < 0:
            raise StepFailed("the engine reported no exit status", retryable=True, output=output.text(), kind="Engine")
        if code != 0:
            raise exit_failure(code, output.text(), options.non_retryable_exit_codes)
        return StepResult(exit_code=0, output=output.text(), output_truncated=output.truncated)

    async def _create(self, agent: Agent, request: StepRequest, options: ContainerOptions) -> DockerContainer:
        docker = self._client()
        spec = _spec(agent, request, options)
        try:
            return await docker.containers.create(spec)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
            if options.pull == "never":
                raise config_error(f"image {options.image!r} is not on the engine (pull: never)") from None
        try:
            await docker.images.pull(options.image)
        except aiodocker.DockerError as exc:
            raise StepFailed(f"cannot pull {options.image!r}: {exc.message}", retryable=True, kind="Image") from None
        return await docker.containers.create(spec)

    async def _attach_and_wait(self, container: DockerContainer, request: StepRequest) -> tuple[OutputBuffer, int]:
        # stdin through an attach made before the start (so the step cannot miss it) that ends
        # once written: StdinOnce then closes the step's stdin.
        async with container.attach(stdin=True) as stdin:
            await container.start()
            # A step that exits without reading its stdin closes the attach first; as with a
            # broken pipe, that is the step's business. (aiodocker asserts on the closed socket.)
            with contextlib.suppress(AssertionError, RuntimeError, ConnectionError, aiohttp.ClientError):
                await stdin.write_in(orjson.dumps(step_context(request)))
        # The output is read from the engine's log once the step has exited: podman's attach and
        # log-follow streams race with a container that exits at once (lost tails, hangs, 500s).
        status = await container.wait()
        output = OutputBuffer(self._cap)
        # Read to the end (the step has exited, so it ends): a log stream left half-read leaks
        # its connection.
        async for text in container.log(stdout=True, stderr=True, follow=True):
            output.add(text.encode())
        return output, int(status.get("StatusCode", -1))

    @staticmethod
    async def _remove(container: DockerContainer) -> None:
        # Also on cancellation: shielded, so the container is gone before the step reports back.
        with contextlib.suppress(aiodocker.DockerError, OSError):
            await asyncio.shield(container.delete(force=True))
