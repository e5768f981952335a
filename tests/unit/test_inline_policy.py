"""Runner options written in a definition's inline action are capped by the worker's policy
(`runner_settings.<kind>.inline`): safe by default, widened only by the operator; options of
agents the operator configured are not capped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from schemas.agents import Agent, AgentCatalog
from schemas.run import StepRequest
from schemas.workflow import Action
from worker.activities import StepActivities
from worker.runners import RunnerContext, StepFailed
from worker.runners.base import InlineCapped, RunnerOptions, agent_options
from worker.runners.container import ContainerOptions, ContainerRunner
from worker.runners.kubernetes import KubernetesOptions, KubernetesRunner
from worker.runners.sandbox import SandboxOptions, SandboxRunner
from worker.runners.ssh import SshOptions, SshRunner

FACTORIES = {
    "container": ContainerRunner.create,
    "kubernetes": KubernetesRunner.create,
    "sandbox": SandboxRunner.create,
    "ssh": SshRunner.create,
}
BASE = {
    "container": {"image": "alpine:3"},
    "kubernetes": {"image": "alpine:3"},
    "sandbox": {},
    "ssh": {"host": "build-1.internal", "username": "deploy"},
}
OPTIONS: dict[str, type[RunnerOptions]] = {
    "container": ContainerOptions,
    "kubernetes": KubernetesOptions,
    "sandbox": SandboxOptions,
    "ssh": SshOptions,
}
SSH_WIDENED = {"hosts": ["build-*.internal"], "users": ["deploy"]}


def runner(kind: str, settings: dict[str, Any] | None = None) -> InlineCapped[Any]:
    made = FACTORIES[kind](RunnerContext(settings=settings or {}))
    assert isinstance(made, InlineCapped)
    return made


def inline(kind: str, **options: Any) -> Agent:
    return Agent(name="inline:step", runner=kind, command=("true",), options={**BASE[kind], **options})


def check_inline(capped: InlineCapped[Any], agent: Agent) -> None:
    """The policy check the activity makes on an inline action's options, as `check` parsed them
    (`check` itself is left out: it also wants bwrap and a known_hosts file on this machine)."""
    capped.check_inline(agent, agent_options(OPTIONS[agent.runner], agent))


@pytest.mark.parametrize(
    ("kind", "options", "named"),
    [
        ("container", {"network": "host"}, "network='host'"),
        ("container", {"network": "container:other-team-step"}, "network='container:other-team-step'"),
        ("container", {"network": "bridge"}, "network='bridge'"),
        ("container", {"cap_add": ["SYS_ADMIN"]}, "cap_add=['SYS_ADMIN']"),
        ("container", {"cap_add": ["cap_net_raw"]}, "cap_add=['NET_RAW']"),
        ("container", {"no_new_privileges": False}, "no_new_privileges=False"),
        ("container", {"pids_limit": None}, "pids_limit=None"),
        ("container", {"pids_limit": 100000}, "pids_limit=100000"),
        ("sandbox", {"network": True}, "network=True"),
        ("sandbox", {"read_only_paths": ["/home"]}, "read_only_paths='/home'"),
        ("sandbox", {"read_only_paths": ["/etc"]}, "read_only_paths='/etc'"),
        ("kubernetes", {"namespace": "kube-system"}, "namespace='kube-system'"),
        ("kubernetes", {"service_account": "cluster-admin"}, "service_account='cluster-admin'"),
        ("ssh", {}, "host='build-1.internal'"),
    ],
)
def test_dangerous_inline_options_are_refused_by_default(kind: str, options: dict[str, Any], named: str) -> None:
    with pytest.raises(StepFailed) as refused:
        check_inline(runner(kind), inline(kind, **options))
    assert (refused.value.kind, refused.value.retryable) == ("Config", False)
    assert f"inline action option {named} exceeds this worker's policy worker.runner_settings.{kind}.inline." in str(
        refused.value
    )


@pytest.mark.parametrize("kind", ["container", "kubernetes", "sandbox"])
def test_inline_options_within_the_default_policy_pass(kind: str) -> None:
    check_inline(runner(kind), inline(kind))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"host": "db.internal"}, "host='db.internal'"),
        ({"username": "root"}, "username='root'"),
    ],
)
def test_ssh_hosts_and_users_come_only_from_the_policy(options: dict[str, Any], named: str) -> None:
    ssh = runner("ssh", {"inline": SSH_WIDENED})
    check_inline(ssh, inline("ssh"))
    with pytest.raises(StepFailed, match=re.escape(f"inline action option {named} exceeds")):
        check_inline(ssh, inline("ssh", **options))


def test_ssh_keys_come_only_from_the_workers_keys(tmp_path: Path) -> None:
    ssh = runner("ssh", {"inline": SSH_WIDENED, "client_keys": [str(tmp_path / "deploy_key")]})
    check_inline(ssh, inline("ssh", client_keys=[str(tmp_path / "deploy_key")]))
    refused = re.escape("client_keys names '/root/.ssh/id_ed25519', not one of this worker's keys")
    with pytest.raises(StepFailed, match=refused):
        check_inline(ssh, inline("ssh", client_keys=["/root/.ssh/id_ed25519"]))


def test_the_operator_widens_the_policy_per_runner_kind(tmp_path: Path) -> None:
    container = runner("container", {"inline": {"networks": ["none", "bridge"], "cap_add": ["NET_BIND_SERVICE"]}})
    check_inline(container, inline("container", network="bridge", cap_add=["CAP_NET_BIND_SERVICE"]))
    kubernetes = runner("kubernetes", {"namespace": "steps", "inline": {"service_accounts": ["reader"]}})
    check_inline(kubernetes, inline("kubernetes", namespace="steps", service_account="reader"))
    (tmp_path / "tools").mkdir()
    sandbox = runner("sandbox", {"inline": {"network": True, "read_only_paths": [str(tmp_path)]}})
    check_inline(sandbox, inline("sandbox", network=True, read_only_paths=[str(tmp_path / "tools")]))


def test_a_symlink_under_an_allowed_sandbox_path_cannot_lead_out_of_it(tmp_path: Path) -> None:
    (tmp_path / "escape").symlink_to("/etc")
    sandbox = runner("sandbox", {"inline": {"read_only_paths": [str(tmp_path)]}})
    with pytest.raises(StepFailed, match="read_only_paths="):
        check_inline(sandbox, inline("sandbox", read_only_paths=[str(tmp_path / "escape")]))


async def test_a_step_whose_inline_options_exceed_the_policy_fails_without_retry() -> None:
    container = ContainerRunner.create(RunnerContext())
    activities = StepActivities(AgentCatalog(), {"container": container}, inline_runners=frozenset({"container"}))
    action = Action(runner="container", command=("id",), options={"image": "alpine:3", "network": "host"})
    request = StepRequest(workflow_id="wf", step="escape", action=action, input={})
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.run_step, request)
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)
    assert "network='host' exceeds this worker's policy worker.runner_settings.container.inline.networks" in str(
        failed.value
    )


def test_an_agent_configured_by_the_operator_is_not_capped() -> None:
    # The activity checks inline actions only; an agent with the same options is the operator's.
    container = ContainerRunner.create(RunnerContext())
    agent = Agent(name="ops-debug", runner="container", command=("id",), options={"image": "a", "network": "host"})
    container.check(agent)
