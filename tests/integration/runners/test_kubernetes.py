"""The kubernetes runner against the stand-in API server (kube_standin.py; not a real cluster):
the Job it creates, watching across server-side timeouts, logs, deletion and API errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from schemas.agents import Agent
from tests.integration.runners.harness import Harness, cleanup_sleepers, sleep_token, wait_until
from tests.integration.runners.kube_standin import KubeStandIn
from worker.runners import RunnerContext
from worker.runners.kubernetes import KubernetesRunner

Kube = tuple[KubeStandIn, Path]


def job_agent(*command: str, timeout_s: float = 30, **options: Any) -> Agent:
    return Agent(
        name="jobbed",
        runner="kubernetes",
        command=command,
        timeout_s=timeout_s,
        env={"TARGET": "prod"},
        options={"image": "registry.example/agent:1", "namespace": "hookline", **options},
    )


@pytest.fixture
async def runner_for(kube: Kube) -> AsyncIterator[Callable[..., Harness]]:
    """Harnesses with runners of their own settings, closed after the test."""
    runners: list[KubernetesRunner] = []

    async def never(token: str) -> bool:
        return False

    def make(**settings: Any) -> Harness:
        runners.append(KubernetesRunner.create(RunnerContext(settings={"kubeconfig": str(kube[1]), **settings})))
        return Harness("kubernetes", runners[-1], lambda b, t: job_agent("true"), never)

    yield make
    for runner in runners:
        await runner.close()


async def failure(harness: Harness, agent: Agent) -> ApplicationError:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(agent)
    return failed.value


def only_job(kube: Kube) -> dict[str, Any]:
    (job,) = [h[-1][2] for h in kube[0].history.values()]
    return job


async def test_the_job_runs_once_with_the_agents_image_command_and_environment(
    kubernetes_harness: Harness, kube: Kube
) -> None:
    agent = job_agent(
        "sh",
        "-c",
        "echo $TARGET",
        service_account="deployer",
        node_selector={"pool": "batch"},
        resources={"limits": {"cpu": "500m", "memory": "256Mi"}},
    )
    assert (await kubernetes_harness.run(agent)).output == "prod\n"
    job = only_job(kube)
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"], spec["activeDeadlineSeconds"]) == (0, 600, 60)
    assert (pod["restartPolicy"], pod["serviceAccountName"], pod["nodeSelector"]) == (
        "Never",
        "deployer",
        {"pool": "batch"},
    )
    assert (container["image"], container["command"]) == ("registry.example/agent:1", ["sh", "-c", "echo $TARGET"])
    assert container["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TARGET"] == "prod" and env["HOOKLINE_STEP"] == "contract" and '"input":' in env["HOOKLINE_CONTEXT"]
    assert job["metadata"]["annotations"]["hookline.dev/workflow-id"] == "contract-jobbed"
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "hookline"


async def test_a_finished_job_is_left_to_its_ttl(kubernetes_harness: Harness, kube: Kube) -> None:
    await kubernetes_harness.run(job_agent("true"))
    assert kube[0].deleted == []
    assert only_job(kube)["status"]["succeeded"] == 1


async def test_the_watch_is_renewed_after_a_server_side_timeout(runner_for: Callable[..., Harness]) -> None:
    result = await runner_for(watch_timeout_s=1).run(job_agent("sh", "-c", "sleep 2.5; echo done"))
    assert result.output == "done\n"


async def test_a_job_over_its_timeout_is_deleted(kubernetes_harness: Harness, kube: Kube) -> None:
    token = sleep_token()
    try:
        error = await failure(kubernetes_harness, job_agent("sleep", token, timeout_s=1))
        assert error.type == "Timeout"
        assert len(kube[0].deleted) == 1 and kube[0].jobs == {} and kube[0].pods == {}
    finally:
        cleanup_sleepers(token)


async def test_a_cancelled_step_deletes_its_job(kubernetes_harness: Harness, kube: Kube) -> None:
    token = sleep_token()
    env = kubernetes_harness.environment()
    step = asyncio.create_task(kubernetes_harness.run(job_agent("sleep", token), env))
    try:
        assert await wait_until(lambda: kubernetes_harness.running(token), 10)
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await step
        assert len(kube[0].deleted) == 1 and kube[0].jobs == {}
    finally:
        cleanup_sleepers(token)


async def test_a_failed_job_reports_the_exit_code_and_its_log(kubernetes_harness: Harness) -> None:
    error = await failure(
        kubernetes_harness, job_agent("sh", "-c", "echo no such release; exit 2", non_retryable_exit_codes=[2])
    )
    assert (error.type, error.non_retryable, error.message) == ("ExitCode", True, "exited with code 2")
    assert error.details[0]["output"] == "no such release\n"


async def test_a_refused_api_call_is_a_typed_error(kube: Kube, runner_for: Callable[..., Harness]) -> None:
    kube[1].write_text(kube[1].read_text().replace(kube[0].token, "wrong-token"))
    error = await failure(runner_for(), job_agent("true"))
    assert (error.type, error.non_retryable) == ("KubernetesApi", True)
    assert error.message == "Kubernetes API: 401 Unauthorized: Unauthorized"


async def test_a_missing_kubeconfig_is_a_configuration_error(
    runner_for: Callable[..., Harness], tmp_path: Path
) -> None:
    error = await failure(runner_for(kubeconfig=str(tmp_path / "nope")), job_agent("true"))
    assert (error.type, error.non_retryable) == ("Config", True)


@pytest.mark.parametrize(
    ("image", "kind", "retryable"),
    [("registry.example/no-such-image:1", "Image", True), ("registry.example/INVALID", "Config", False)],
)
async def test_a_pod_that_cannot_start_fails_the_step_without_waiting_for_the_timeout(
    runner_for: Callable[..., Harness], kube: Kube, image: str, kind: str, retryable: bool
) -> None:
    error = await failure(runner_for(pod_check_s=0.1), job_agent("true", timeout_s=60, image=image))
    assert (error.type, not error.non_retryable) == (kind, retryable)
    assert "cannot start" in error.message
    assert len(kube[0].deleted) == 1


@pytest.mark.parametrize("fault", ["close", "malformed"])
async def test_a_broken_watch_deletes_the_job_and_is_retryable(
    runner_for: Callable[..., Harness], kube: Kube, fault: str
) -> None:
    token = sleep_token()
    kube[0].watch_fault = fault
    try:
        error = await failure(runner_for(), job_agent("sleep", token))
        assert (error.type, error.non_retryable) == ("KubernetesApi", False)
        assert len(kube[0].deleted) == 1 and kube[0].jobs == {}
    finally:
        cleanup_sleepers(token)


async def test_an_expired_watch_version_rereads_the_job_and_watches_on(
    runner_for: Callable[..., Harness], kube: Kube
) -> None:
    kube[0].watch_fault = "gone"
    result = await runner_for(watch_timeout_s=1).run(job_agent("sh", "-c", "sleep 1.5; echo done"))
    assert result.output == "done\n"
    assert kube[0].deleted == [] and kube[0].watches >= 2
