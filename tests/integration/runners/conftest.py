"""Runner back ends, started once per session where they are costly (sshd, podman), and one
contract harness per runner kind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from yarl import URL

from schemas.agents import Agent
from tests.integration.runners.backends import Podman, Sshd, podman_service, sshd
from tests.integration.runners.harness import CAP, Behaviour, Harness, process_running
from tests.integration.runners.kube_standin import KubeStandIn
from worker.runners import RunnerContext
from worker.runners.container import ContainerRunner
from worker.runners.http import HttpRunner
from worker.runners.kubernetes import KubernetesRunner
from worker.runners.sandbox import SandboxRunner
from worker.runners.shell import ShellRunner
from worker.runners.ssh import SshRunner

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def local_agent(kind: str, behaviour: Behaviour, token: str, workdir: Path) -> Agent:
    """The contract behaviours as commands on this machine (shell, sandbox)."""
    commands: dict[Behaviour, tuple[str, ...]] = {
        "echo": ("cat",),
        "fail": ("sh", "-c", "echo boom; exit 3"),
        "slow": ("sleep", token),
        "flood": ("sh", "-c", "yes hookline | head -c 100000"),
        "bad_config": ("true",),
    }
    return Agent(
        name=f"{kind}-{behaviour}",
        runner=kind,
        command=commands[behaviour],
        workdir=workdir,
        timeout_s=1.5 if behaviour == "slow" else 30,
        options={"no_such_option": True} if behaviour == "bad_config" else {},
    )


@pytest.fixture
async def shell_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    runner = ShellRunner.create(RunnerContext(output_cap_bytes=CAP, inherited_env=ENV))
    yield Harness("shell", runner, lambda b, t: local_agent("shell", b, t, tmp_path), process_running)
    await runner.close()


@pytest.fixture
async def sandbox_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    runner = SandboxRunner.create(RunnerContext(output_cap_bytes=CAP, inherited_env=ENV))
    yield Harness("sandbox", runner, lambda b, t: local_agent("sandbox", b, t, tmp_path), process_running)
    await runner.close()


class AgentEndpoints:
    """A real aiohttp server on loopback playing agent endpoints: /echo returns the JSON body it
    got, /status/N answers N, /slow/TOKEN hangs (cancelled when the client
    goes), /flood sends 100 kB, /redirect?to=URL redirects."""

    def __init__(self) -> None:
        self.hanging: set[str] = set()
        self.requests: list[web.Request] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/echo", self.echo)
        self.app.router.add_route("*", "/status/{code}", self.status)
        self.app.router.add_route("*", "/slow/{token}", self.slow)
        self.app.router.add_route("*", "/flood", self.flood)
        self.app.router.add_route("*", "/redirect", self.redirect)

    async def echo(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        body = await request.read()
        return web.Response(body=body or b"{}", content_type="application/json")

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code}")

    async def slow(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        self.hanging.add(token)
        try:
            await asyncio.sleep(600)
        finally:
            self.hanging.discard(token)
        return web.Response()

    async def flood(self, request: web.Request) -> web.Response:
        return web.Response(body=b"hookline\n" * 12_000)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query.get("to", "/redirect"))  # without `to`: to itself, forever


@pytest.fixture
async def endpoints(aiohttp_server: AiohttpServer) -> tuple[AgentEndpoints, URL]:
    agent = AgentEndpoints()
    server = await aiohttp_server(agent.app)  # the test server cancels a handler whose client left
    return agent, server.make_url("/")


def http_agent(url: URL, behaviour: Behaviour, token: str) -> Agent:
    paths: dict[Behaviour, str] = {
        "echo": "echo",
        "fail": "status/500",
        "slow": f"slow/{token}",
        "flood": "flood",
        "bad_config": "",
    }
    options: dict[str, object] = {"url": str(url.join(URL(paths[behaviour])))}
    if behaviour == "bad_config":
        options = {"method": "POST"}  # no url
    return Agent(name=f"http-{behaviour}", runner="http", timeout_s=1.5 if behaviour == "slow" else 30, options=options)


@pytest.fixture
async def http_harness(endpoints: tuple[AgentEndpoints, URL]) -> AsyncIterator[Harness]:
    agent_server, url = endpoints
    runner = HttpRunner.create(RunnerContext(output_cap_bytes=CAP, settings={"allow": ["127.0.0.0/8"]}))

    async def hanging(token: str) -> bool:
        return token in agent_server.hanging

    yield Harness("http", runner, lambda b, t: http_agent(url, b, t), hanging)
    await runner.close()


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def ssh_agent(server: Sshd, behaviour: Behaviour, token: str, workdir: Path) -> Agent:
    local = local_agent("ssh", behaviour, token, workdir)
    options: dict[str, object] = {"host": "127.0.0.1", "port": server.port, "username": server.username}
    if behaviour == "bad_config":
        options["hostname"] = "typo"
    return local.model_copy(update={"options": options})


@pytest.fixture
async def ssh_harness(ssh_server: Sshd, tmp_path: Path) -> AsyncIterator[Harness]:
    settings = {"known_hosts": str(ssh_server.known_hosts), "client_keys": [str(ssh_server.client_key)]}
    runner = SshRunner.create(RunnerContext(output_cap_bytes=CAP, settings=settings))
    yield Harness("ssh", runner, lambda b, t: ssh_agent(ssh_server, b, t, tmp_path), process_running)
    await runner.close()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    with podman_service(tmp_path_factory.mktemp("podman")) as service:
        yield service


def container_agent(podman: Podman, behaviour: Behaviour, token: str) -> Agent:
    local = local_agent("container", behaviour, token, Path("/"))
    options: dict[str, object] = {"image": podman.image, "pull": "never"}
    if behaviour == "bad_config":
        options = {"image": podman.image, "memory": "1g"}  # not an option: memory_bytes
    return local.model_copy(update={"options": options, "workdir": None})


@pytest.fixture
async def container_harness(podman: Podman) -> AsyncIterator[Harness]:
    runner = ContainerRunner.create(RunnerContext(output_cap_bytes=CAP, settings={"docker_url": podman.url}))
    yield Harness("container", runner, lambda b, t: container_agent(podman, b, t), process_running)
    await runner.close()


@pytest.fixture
async def kube(aiohttp_server: AiohttpServer, tmp_path: Path) -> tuple[KubeStandIn, Path]:
    """The stand-in API server and a kubeconfig (token auth, namespace `hookline`) pointing at it."""
    standin = KubeStandIn(token="t0ken-for-tests")
    server = await aiohttp_server(standin.app)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: standin, cluster: {{server: "{server.make_url("").with_path("")}"}}}}]
users: [{{name: hookline, user: {{token: {standin.token}}}}}]
contexts: [{{name: standin, context: {{cluster: standin, user: hookline}}}}]
current-context: standin
"""
    )
    return standin, kubeconfig


def kubernetes_agent(behaviour: Behaviour, token: str) -> Agent:
    local = local_agent("kubernetes", behaviour, token, Path("/"))
    command = ("sh", "-c", 'printf %s "$HOOKLINE_CONTEXT"') if behaviour == "echo" else local.command
    options: dict[str, object] = {"image": "busybox:1.36", "namespace": "hookline"}
    if behaviour == "bad_config":
        options["imagePullPolicy"] = "Never"  # the option is image_pull_policy
    return local.model_copy(update={"options": options, "workdir": None, "command": command})


@pytest.fixture
async def kubernetes_harness(kube: tuple[KubeStandIn, Path]) -> AsyncIterator[Harness]:
    settings = {"kubeconfig": str(kube[1]), "watch_timeout_s": 5}
    runner = KubernetesRunner.create(RunnerContext(output_cap_bytes=CAP, settings=settings))
    yield Harness("kubernetes", runner, kubernetes_agent, process_running)
    await runner.close()
