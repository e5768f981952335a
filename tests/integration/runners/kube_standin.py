"""A stand-in Kubernetes API server for the kubernetes runner's tests: only the Batch/Core
endpoints the runner uses, with objects shaped as in the Kubernetes OpenAPI schema (batch/v1 Job,
v1 Pod, v1 Status, watch events). Its "kubelet" runs each Job's container command as a local
process (the image is recorded, not pulled), so exit codes, logs, timeouts and deletion are real.
No cluster can run on these machines; this is not one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

JOBS = "/apis/batch/v1/namespaces/{namespace}/jobs"
PODS = "/api/v1/namespaces/{namespace}/pods"
#: Images the stand-in's kubelet cannot start, and the container waiting reason it reports.
BAD_IMAGES = {"no-such-image": "ErrImagePull", "INVALID": "InvalidImageName"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


class KubeStandIn:
    def __init__(self, token: str) -> None:
        self.token = token
        self.version = 0
        self.jobs: dict[str, dict[str, Any]] = {}  # "namespace/name" → Job
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, bytearray] = {}
        self.history: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        self.changed = asyncio.Condition()
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.deleted: list[str] = []
        #: A fault the next watch request meets: "close" (the connection drops mid-stream),
        #: "malformed" (a line that is no watch event), "gone" (410 Expired: the version asked
        #: for is compacted away, as etcd does).
        self.watch_fault: str | None = None
        self.watches = 0
        self.kubelets: set[asyncio.Task[None]] = set()
        self.app = web.Application(middlewares=[self.auth])
        self.app.router.add_post(JOBS, self.create_job)
        self.app.router.add_get(JOBS, self.list_jobs)
        self.app.router.add_get(JOBS + "/{name}", self.read_job)
        self.app.router.add_delete(JOBS + "/{name}", self.delete_job)
        self.app.router.add_get(PODS, self.list_pods)
        self.app.router.add_get(PODS + "/{name}/log", self.pod_log)
        self.app.on_cleanup.append(self.kill_all)

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        response: web.StreamResponse = await handler(request)
        return response

    async def _bump(self, key: str, kind: str, job: dict[str, Any]) -> None:
        async with self.changed:
            self.version += 1
            job["metadata"]["resourceVersion"] = str(self.version)
            self.history.setdefault(key, []).append((self.version, kind, orjson.loads(orjson.dumps(job))))
            self.changed.notify_all()

    async def create_job(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        job = await request.json()
        spec = job.get("spec") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        containers = pod_spec.get("containers") or []
        if job.get("kind") != "Job" or not containers or not all(c.get("name") and c.get("image") for c in containers):
            return _status(422, "Invalid", "Job.batch is invalid: spec.template.spec.containers: Required value")
        if pod_spec.get("restartPolicy") not in {"Never", "OnFailure"}:
            return _status(422, "Invalid", 'spec.template.spec.restartPolicy: Unsupported value: "Always"')
        meta = job.setdefault("metadata", {})
        meta["name"] = meta.get("name") or f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
        meta.update(namespace=namespace, uid=secrets.token_hex(16), creationTimestamp=_now())
        job["apiVersion"], job["status"] = "batch/v1", {}
        key = f"{namespace}/{meta['name']}"
        self.jobs[key] = job
        await self._bump(key, "ADDED", job)
        kubelet = asyncio.get_running_loop().create_task(self._kubelet(namespace, job))
        self.kubelets.add(kubelet)
        kubelet.add_done_callback(self.kubelets.discard)
        return web.json_response(job, status=201)

    async def _kubelet(self, namespace: str, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        key = f"{namespace}/{name}"
        container = job["spec"]["template"]["spec"]["containers"][0]
        pod_name = f"{name}-{secrets.token_hex(3)[:5]}"
        labels = {
            **(job["spec"]["template"].get("metadata") or {}).get("labels", {}),
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": job["metadata"]["uid"],
        }
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": labels,
                "uid": secrets.token_hex(16),
                "creationTimestamp": _now(),
            },
            "spec": job["spec"]["template"]["spec"],
            "status": {
                "phase": "Running",
                "startTime": _now(),
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": _now()}},
                    }
                ],
            },
        }
        self.pods[f"{namespace}/{pod_name}"] = pod
        self.logs[f"{namespace}/{pod_name}"] = log = bytearray()
        for marker, reason in BAD_IMAGES.items():
            if marker in container["image"]:
                waiting = {"reason": reason, "message": f'failed to pull image "{container["image"]}"'}
                pod["status"].update(
                    phase="Pending",
                    containerStatuses=[
                        {**pod["status"]["containerStatuses"][0], "ready": False, "state": {"waiting": waiting}}
                    ],
                )
                return
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | {
            e["name"]: e.get("value", "") for e in container.get("env", [])
        }
        job["status"] = {"startTime": _now(), "active": 1}
        await self._bump(key, "MODIFIED", job)
        proc = await asyncio.create_subprocess_exec(
            *container["command"],
            *container.get("args", []),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[key] = proc
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            log += chunk
        code = await proc.wait()
        if key not in self.jobs:  # deleted meanwhile
            return
        ok = code == 0
        pod["status"]["phase"] = "Succeeded" if ok else "Failed"
        pod["status"]["containerStatuses"][0].update(
            ready=False,
            state={
                "terminated": {
                    "exitCode": code if code >= 0 else 128 - code,
                    "reason": "Completed" if ok else "Error",
                    "startedAt": pod["status"]["startTime"],
                    "finishedAt": _now(),
                }
            },
        )
        condition = {"status": "True", "lastProbeTime": _now(), "lastTransitionTime": _now()}
        job["status"] = {"startTime": job["status"]["startTime"], "ready": 0, "terminating": 0}
        if ok:
            job["status"].update(
                succeeded=1,
                completionTime=_now(),
                conditions=[
                    {**condition, "type": "SuccessCriteriaMet", "reason": "CompletionsReached"},
                    {**condition, "type": "Complete", "reason": "CompletionsReached"},
                ],
            )
        else:
            job["status"].update(
                failed=1,
                conditions=[
                    {**condition, "type": "FailureTarget", "reason": "BackoffLimitExceeded"},
                    {
                        **condition,
                        "type": "Failed",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                    },
                ],
            )
        await self._bump(key, "MODIFIED", job)

    async def list_jobs(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        selector = request.query.get("fieldSelector", "")
        name = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else None
        if request.query.get("watch", "").lower() not in {"true", "1"}:
            items = [
                j
                for k, j in self.jobs.items()
                if k.startswith(f"{namespace}/") and name in (None, j["metadata"]["name"])
            ]
            return self._list("batch/v1", "JobList", items)
        if name is None:
            return _status(400, "BadRequest", "this stand-in watches single jobs only (fieldSelector=metadata.name=)")
        return await self._watch(request, f"{namespace}/{name}")

    async def read_job(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        job = self.jobs.get(f"{namespace}/{name}")
        if job is None:
            return _status(404, "NotFound", f'jobs.batch "{name}" not found')
        return web.json_response(job)

    async def _watch(self, request: web.Request, key: str) -> web.StreamResponse:
        self.watches += 1
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        fault, self.watch_fault = self.watch_fault, None
        if fault == "close":
            await response.write(b'{"type": "MODIFIED", "object": {"kind"')
            assert request.transport is not None
            request.transport.close()
            return response
        if fault == "malformed":
            await response.write(b'{"kind": "Job"}\n')
            await response.write_eof()
            return response
        if fault == "gone":
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 410}
            status |= {"reason": "Expired", "message": f"too old resource version: {since} ({self.version})"}
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            await response.write_eof()
            return response
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    async with self.changed:
                        await self.changed.wait_for(
                            lambda since=since: self.history.get(key, [(0, "", {})])[-1][0] > since
                        )
                        events = [e for e in self.history[key] if e[0] > since]
                    for version, kind, job in events:
                        await response.write(orjson.dumps({"type": kind, "object": job}) + b"\n")
                        since = version
        if request.query.get("allowWatchBookmarks", "").lower() in {"true", "1"}:
            # As the API server does when a watch times out: where to watch on from.
            bookmark = {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"resourceVersion": str(self.version)}}
            await response.write(orjson.dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
        await response.write_eof()
        return response

    async def delete_job(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        key = f"{namespace}/{name}"
        job = self.jobs.pop(key, None)
        if job is None:
            return _status(404, "NotFound", f'jobs.batch "{name}" not found')
        self.deleted.append(name)
        proc = self.processes.pop(key, None)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for pod_key in [k for k, p in self.pods.items() if p["metadata"]["labels"].get("job-name") == name]:
            del self.pods[pod_key]
        await self._bump(key, "DELETED", job)
        details = {"name": name, "group": "batch", "kind": "jobs", "uid": job["metadata"]["uid"]}
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    async def list_pods(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        wanted = dict(p.split("=", 1) for p in request.query.get("labelSelector", "").split(",") if "=" in p)
        items = [
            p
            for k, p in self.pods.items()
            if k.startswith(f"{namespace}/") and all(p["metadata"]["labels"].get(k2) == v for k2, v in wanted.items())
        ]
        return self._list("v1", "PodList", items)

    def _list(self, api_version: str, kind: str, items: list[dict[str, Any]]) -> web.Response:
        meta = {"resourceVersion": str(self.version)}
        return web.json_response({"apiVersion": api_version, "kind": kind, "metadata": meta, "items": items})

    async def pod_log(self, request: web.Request) -> web.Response:
        key = f"{request.match_info['namespace']}/{request.match_info['name']}"
        if key not in self.logs:
            return _status(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        data = bytes(self.logs[key])
        if "limitBytes" in request.query:
            data = data[: int(request.query["limitBytes"])]
        return web.Response(body=data, content_type="text/plain")

    async def kill_all(self, app: web.Application) -> None:
        for proc in self.processes.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        # Let each kubelet reap its process: one left waiting when the loop closes leaks its
        # subprocess transport (a ResourceWarning, an error under filterwarnings).
        if self.kubelets:
            await asyncio.wait(self.kubelets, timeout=5)
