"""The seed's example workflows, loaded unchanged from examples/workflows/, run on a real
Temporal with their agents spread over every built-in runner kind: only agent configuration
says where a step runs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from temporalio.client import Client
from yarl import URL

from gateway.sources.alertmanager import AlertmanagerSource
from hookline.definitions import StoredDefinition, load_definition_files
from hookline.runs import build_request, start_run
from hookline.settings import TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import RunState
from schemas.workflow import parse_definition
from tests.conftest import DATA, EXAMPLES
from tests.integration.runners.backends import Podman, Sshd
from tests.integration.runners.conftest import AgentEndpoints
from tests.integration.runners.kube_standin import KubeStandIn
from worker.app import running_workers
from worker.settings import WorkerOptions, WorkerSettings

DEMO = ("python3", str(EXAMPLES / "agents" / "demo_agent.py"))
# The sandbox shows the step its working directory (read-only) and the system, nothing else.
BOXED_DEMO = {"command": ("python3", "demo_agent.py"), "workdir": EXAMPLES / "agents"}
SAYS = 'cat > /dev/null; echo "$HOOKLINE_AGENT on {kind}"'


@pytest.fixture
def agents(tmp_path: Path, ssh_server: Sshd, podman: Podman, endpoints: tuple[AgentEndpoints, URL]) -> AgentCatalog:
    def on(kind: str, **fields: Any) -> dict[str, Any]:
        return {"runner": kind, "timeout_s": 60, **fields}

    ssh = {"host": "127.0.0.1", "port": ssh_server.port, "username": ssh_server.username}
    box = {"image": podman.image, "pull": "never"}
    job = {"image": "busybox:1.36", "namespace": "hookline"}
    http = {"url": str(endpoints[1] / "echo"), "body": "input"}
    specs = {
        "test-runner": on("shell", command=DEMO, env={"DEMO_ACTION": "ran the tests"}),
        "builder": on("container", command=("sh", "-c", SAYS.format(kind="container")), options=box),
        "deployer": on("kubernetes", command=("sh", "-c", SAYS.format(kind="kubernetes")), options=job),
        "aws-deployer": on("ssh", command=DEMO, env={"DEMO_ACTION": "deployed to AWS"}, options=ssh),
        "gcp-deployer": on("sandbox", **BOXED_DEMO, env={"DEMO_ACTION": "deployed to GCP"}),
        "azure-deployer": on("http", options=http),
        "analyzer": on("sandbox", **BOXED_DEMO, env={"DEMO_ACTION": "analysed the alert"}),
        "remediator": on("ssh", command=DEMO, env={"DEMO_ACTION": "took the remediation action"}, options=ssh),
        "notifier": on("http", options=http),
    }
    return AgentCatalog(agents={name: Agent(name=name, **spec) for name, spec in specs.items()})


@pytest.fixture
async def worker(
    temporal_client: Client,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
    ssh_server: Sshd,
    podman: Podman,
    kube: tuple[KubeStandIn, Path],
) -> AsyncIterator[None]:
    """One worker serving the interpreter and a pool of every built-in kind."""
    options = WorkerOptions(
        runners=["shell", "sandbox", "http", "ssh", "container", "kubernetes"],
        runner_settings={
            "http": {"allow": ["127.0.0.0/8"]},
            "ssh": {"known_hosts": str(ssh_server.known_hosts), "client_keys": [str(ssh_server.client_key)]},
            "container": {"docker_url": podman.url},
            "kubernetes": {"kubeconfig": str(kube[1])},
        },
    )
    async with running_workers(WorkerSettings(temporal=temporal_settings, worker=options), temporal_client, agents):
        yield


async def run_example(
    name: str, client: Client, settings: TemporalSettings, agents: AgentCatalog, **start: Any
) -> RunState:
    docs = {doc["name"]: doc for _, doc in load_definition_files([EXAMPLES / "workflows"])}
    definition = parse_definition(docs[name], agents=agents.agents.keys())
    stored = StoredDefinition(
        id=definition.id, version=1, digest="", document=docs[name], definition=definition, created_at=""
    )
    handle, _ = await start_run(
        client, settings, build_request(stored, agents, settings, **start), f"{definition.id}:{uuid.uuid4().hex}"
    )
    state: RunState = await asyncio.wait_for(handle.result(), 90)
    return state


async def test_deploy_application_runs_on_shell_container_and_kubernetes(
    worker: None, temporal_client: Client, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> None:
    state = await run_example(
        "Deploy Application", temporal_client, temporal_settings, agents, input={"version": "v1.2.3"}
    )
    outputs = {step: s.output for step, s in state.steps.items()}
    assert state.status == "succeeded"
    assert outputs == {
        "Run Tests": "test-runner: ran the tests [v1.2.3]\n",
        "Build Docker Image": "builder on container\n",
        "Deploy to Production": "deployer on kubernetes\n",
    }


async def test_multi_cloud_deployment_runs_on_ssh_sandbox_and_http(
    worker: None, temporal_client: Client, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> None:
    state = await run_example(
        "Multi-Cloud Deployment", temporal_client, temporal_settings, agents, input={"version": "v2"}
    )
    assert state.status == "succeeded"
    assert state.steps["Deploy to AWS"].output == "aws-deployer: deployed to AWS [v2]\n"
    assert state.steps["Deploy to GCP"].output == "gcp-deployer: deployed to GCP [v2]\n"
    assert json.loads(state.steps["Deploy to Azure"].output or "") == {"version": "v2"}


async def test_incident_response_carries_a_hostile_alert_as_data_across_runners(
    worker: None, temporal_client: Client, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> None:
    body = json.loads((DATA / "alertmanager-firing.json").read_text())
    body["alerts"][0]["labels"]["alertname"] = "$(touch /tmp/pwned); `id` --help"
    event = AlertmanagerSource("alertmanager").parse(orjson.dumps(body), {"Content-Type": "application/json"})[0]
    state = await run_example(
        "Incident Response", temporal_client, temporal_settings, agents, input=event.data, event=event
    )
    assert state.status == "succeeded"
    assert state.steps["Analyze Alert"].output == "analyzer: analysed the alert [$(touch /tmp/pwned); `id` --help]\n"
    assert (
        state.steps["Take Action"].output
        == "remediator: took the remediation action [$(touch /tmp/pwned); `id` --help]\n"
    )
    assert json.loads(state.steps["Notify Team"].output or "")["alert"]["labels"]["alertname"].startswith("$(touch")
    assert not Path("/tmp/pwned").exists()
