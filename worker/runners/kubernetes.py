"""The kubernetes runner: runs a step as a Kubernetes Job (one pod, no retries of its own: the
workflow's retry policy decides), watches it to completion, fetches the pod's log (capped), and
deletes the Job on timeout or cancellation; finished Jobs are left to `ttlSecondsAfterFinished`.

Pods have no stdin, so the step context arrives as JSON in the HOOKLINE_CONTEXT variable (with
the other HOOKLINE_* variables); it is never part of the command.

Tested here against a stand-in API server only (no cluster can run on these machines).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, Literal

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import Field

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import StepFailed, config_error, exit_failure, inline_refused, timed_out
from worker.runners.base import ConfiguredRunner, OutputBuffer, RunnerOptions, step_env

__all__ = ["KubernetesInlinePolicy", "KubernetesOptions", "KubernetesRunner", "KubernetesSettings"]

CONTAINER = "step"
MANAGED_BY = {"app.kubernetes.io/managed-by": "hookline"}


class KubernetesOptions(RunnerOptions):
    """Agent `options:` of the kubernetes runner."""

    image: str = Field(min_length=1)
    namespace: str | None = Field(None, description="Default: the worker's runner_settings.kubernetes.namespace.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    service_account: str | None = None
    resources: dict[Literal["requests", "limits"], dict[str, str]] | None = Field(
        None, description="requests/limits, as in a pod spec."
    )
    node_selector: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    non_retryable_exit_codes: list[int] = Field(default_factory=list)


class KubernetesInlinePolicy(RunnerOptions):
    """What inline actions (written in definitions) may ask of the kubernetes runner."""

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces besides the worker's own (runner_settings.kubernetes.namespace)."
    )
    service_accounts: list[str] = Field(
        default_factory=list, description="Service accounts a Job may run as; none: no token is mounted."
    )


class KubernetesSettings(RunnerOptions):
    """Worker `runner_settings.kubernetes:`."""

    kubeconfig: Path | None = Field(None, description="A kubeconfig file; unset with in_cluster false: ~/.kube/config.")
    context: str | None = None
    in_cluster: bool = Field(False, description="Use the pod's service account (the worker runs in the cluster).")
    namespace: str = "default"
    ttl_seconds_after_finished: int = Field(600, ge=0)
    watch_timeout_s: int = Field(60, ge=1, description="Each watch request's server-side timeout; then re-watched.")
    pod_check_s: float = Field(5.0, gt=0, description="How often the pod is checked for not being able to start.")
    inline: KubernetesInlinePolicy = Field(default_factory=KubernetesInlinePolicy)


def _job_name_prefix(step: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", step.lower()).strip("-")[:40].strip("-")
    return f"hookline-{slug or 'step'}-"


def _status_message(exc: ApiException) -> str:
    """The message of the API's Status answer, not its whole body (which may echo the Job)."""
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:300]


#: Container waiting reasons that mean the pod will not start by itself → retrying may help.
_CANNOT_START = {
    "ErrImagePull": True,
    "ImagePullBackOff": True,
    "InvalidImageName": False,
    "CreateContainerConfigError": False,
    "CreateContainerError": False,
}


def _outcome(job: Any) -> bool | None:
    """True: the Job completed; False: it failed; None: it is still going."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.status == "True" and condition.type in {"Complete", "SuccessCriteriaMet"}:
            return True
        if condition.status == "True" and condition.type in {"Failed", "FailureTarget"}:
            return False
    return None


async def _first(*steps: Coroutine[Any, Any, bool]) -> bool:
    """The result (or exception) of whichever finishes first; the others are cancelled."""
    tasks = [asyncio.ensure_future(s) for s in steps]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class KubernetesRunner(ConfiguredRunner[KubernetesSettings, KubernetesOptions]):
    kind: ClassVar[str] = "kubernetes"
    settings_model = KubernetesSettings
    options_model = KubernetesOptions

    def __init__(self, *, output_cap_bytes: int, settings: KubernetesSettings) -> None:
        super().__init__(output_cap_bytes=output_cap_bytes, settings=settings)
        self._api: client.ApiClient | None = None
        self._lock = asyncio.Lock()

    def check_inline(self, agent: Agent, options: KubernetesOptions) -> None:
        policy = self._settings.inline
        namespaces = [self._settings.namespace, *policy.namespaces]
        if options.namespace is not None and options.namespace not in namespaces:
            raise inline_refused(self.kind, "namespace", options.namespace, "namespaces", namespaces)
        if options.service_account is not None and options.service_account not in policy.service_accounts:
            raise inline_refused(
                self.kind, "service_account", options.service_account, "service_accounts", policy.service_accounts
            )

    async def _client(self) -> client.ApiClient:
        async with self._lock:
            if self._api is None:
                configuration = client.Configuration()
                if self._settings.in_cluster:
                    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                else:
                    await config.load_kube_config(
                        config_file=str(self._settings.kubeconfig) if self._settings.kubeconfig else None,
                        context=self._settings.context,
                        client_configuration=configuration,
                        persist_config=False,
                    )
                self._api = client.ApiClient(configuration)
            return self._api

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    def _job(self, agent: Agent, request: StepRequest, options: KubernetesOptions) -> client.V1Job:
        labels = {**options.labels, **MANAGED_BY}
        container = client.V1Container(
            name=CONTAINER,
            image=options.image,
            command=list(agent.command),
            env=[client.V1EnvVar(name=k, value=v) for k, v in step_env(agent, request, with_context=True).items()],
            image_pull_policy=options.image_pull_policy,
            resources=client.V1ResourceRequirements(
                requests=options.resources.get("requests"), limits=options.resources.get("limits")
            )
            if options.resources
            else None,
        )
        return client.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=client.V1ObjectMeta(
                generate_name=_job_name_prefix(request.step),
                labels=labels,
                annotations={"hookline.dev/workflow-id": request.workflow_id, "hookline.dev/step": request.step},
            ),
            spec=client.V1JobSpec(
                backoff_limit=0,
                ttl_seconds_after_finished=self._settings.ttl_seconds_after_finished,
                # The runner's own timeout comes first; this stops the pod should the worker be gone.
                active_deadline_seconds=math.ceil(agent.timeout_s) + 30,
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[container],
                        service_account_name=options.service_account,
                        automount_service_account_token=options.service_account is not None,
                        node_selector=options.node_selector or None,
                    ),
                ),
            ),
        )

    async def run(self, agent: Agent, options: KubernetesOptions, request: StepRequest) -> StepResult:
        namespace = options.namespace or self._settings.namespace
        try:
            api = await self._client()
        except Exception as exc:  # kubeconfig missing or unreadable: nothing to retry
            raise config_error(f"cannot load the Kubernetes configuration: {exc}") from exc
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        name: str | None = None
        try:
            async with asyncio.timeout(agent.timeout_s):
                created = await batch.create_namespaced_job(namespace, self._job(agent, request, options))
                name = str(created.metadata.name)
                succeeded = await _first(
                    self._watch(batch, namespace, name, str(created.metadata.resource_version or "")),
                    self._stuck_pod(core, namespace, name),
                )
                output, code = await self._logs(core, namespace, name)
        except TimeoutError:
            await self._delete(batch, namespace, name)
            raise timed_out(agent.timeout_s) from None
        except (asyncio.CancelledError, StepFailed):
            await self._delete(batch, namespace, name)
            raise
        except ApiException as exc:
            await self._delete(batch, namespace, name)
            status = int(exc.status or 0)
            raise StepFailed(
                f"Kubernetes API: {exc.status} {exc.reason}: {_status_message(exc)}",
                retryable=status == 0 or status >= 500 or status == 429,
                kind="KubernetesApi",
            ) from None
        except Exception as exc:
            # A dropped connection, a garbled watch event: the Job may still run. Delete it, or the
            # retry would start a second one beside it.
            await self._delete(batch, namespace, name)
            raise StepFailed(
                f"Kubernetes API: {type(exc).__name__}: {str(exc)[:300]}", retryable=True, kind="KubernetesApi"
            ) from None
        if not succeeded:
            raise exit_failure(code or 1, output.text(), options.non_retryable_exit_codes)
        return StepResult(exit_code=0, output=output.text(), output_truncated=output.truncated)

    async def _watch(self, batch: client.BatchV1Api, namespace: str, name: str, version: str) -> bool:
        """Watch the Job until it completes (True) or fails (False), re-watching after each
        server-side timeout from the last version seen (bookmarks keep it fresh). A version the
        server no longer has (410 Gone) is not the step's failure: the Job is read again for its
        status and a version to watch on from."""
        while True:
            try:
                async with watch.Watch() as events:
                    stream = events.stream(
                        batch.list_namespaced_job,
                        namespace,
                        field_selector=f"metadata.name={name}",
                        resource_version=version or None,
                        timeout_seconds=self._settings.watch_timeout_s,
                        allow_watch_bookmarks=True,
                    )
                    async for event in stream:
                        if event["type"] == "BOOKMARK":  # its object is left a dict by the client
                            version = str(event["raw_object"]["metadata"]["resourceVersion"])
                            continue
                        job = event["object"]
                        version = str(job.metadata.resource_version or version)
                        outcome = _outcome(job)
                        if outcome is not None:
                            return outcome
            except ApiException as exc:
                if exc.status != 410:
                    raise
                job = await batch.read_namespaced_job(name, namespace)
                version = str(job.metadata.resource_version or "")
                outcome = _outcome(job)
                if outcome is not None:
                    return outcome

    async def _stuck_pod(self, core: client.CoreV1Api, namespace: str, name: str) -> bool:
        """Raises once the Job's pod cannot start (bad image, missing config): the Job itself would
        wait for it until the step's timeout. Never returns otherwise."""
        while True:
            await asyncio.sleep(self._settings.pod_check_s)
            pods = await core.list_namespaced_pod(namespace, label_selector=f"job-name={name}")
            for pod in pods.items:
                for status in (pod.status and pod.status.container_statuses) or []:
                    waiting = status.state.waiting if status.state else None
                    if waiting is not None and waiting.reason in _CANNOT_START:
                        retryable = _CANNOT_START[waiting.reason]
                        detail = f" ({waiting.message})" if waiting.message else ""
                        raise StepFailed(
                            f"pod {pod.metadata.name} cannot start: {waiting.reason}{detail}",
                            retryable=retryable,
                            kind="Image" if retryable else "Config",
                        )

    async def _logs(self, core: client.CoreV1Api, namespace: str, name: str) -> tuple[OutputBuffer, int | None]:
        """The capped log of the Job's pod and its exit code."""
        pods = await core.list_namespaced_pod(namespace, label_selector=f"job-name={name}")
        output = OutputBuffer(self._cap)
        if not pods.items:
            return output, None
        pod: Any = pods.items[-1]
        # Raw bytes: the client would otherwise parse a log that happens to be JSON and return its repr.
        response: Any = await core.read_namespaced_pod_log(
            pod.metadata.name, namespace, container=CONTAINER, limit_bytes=self._cap + 1, _preload_content=False
        )
        async with response:
            output.add(await response.read())
        code = None
        for status in pod.status.container_statuses or []:
            if status.name == CONTAINER and status.state and status.state.terminated:
                code = int(status.state.terminated.exit_code)
        return output, code

    @staticmethod
    async def _delete(batch: client.BatchV1Api, namespace: str, name: str | None) -> None:
        if name is None:
            return
        # Shielded: a cancelled step still removes its Job (and, by propagation, its pod).
        with contextlib.suppress(ApiException, OSError, aiohttp.ClientError, asyncio.TimeoutError):
            await asyncio.shield(
                batch.delete_namespaced_job(name, namespace, propagation_policy="Background", grace_period_seconds=0)
            )
