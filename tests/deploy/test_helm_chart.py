"""deploy/helm/hookline: the chart lints, renders with its default values and with each file of
its ci/ folder, and every object it renders is valid against the Kubernetes API schemas (those of
the oldest and the newest Kubernetes the chart supports, offline: PyPI's kubernetes-validate)
or, for KEDA's ScaledObject and the Prometheus Operator's ServiceMonitor, against their CRDs
(tests/deploy/crds). The rendered objects are then read as the cluster would use them: the
probes name routes the components serve, the settings each pod builds from its ConfigMap, its
Secrets and its environment load with the code's own settings classes, the PDB and the HPA
select the gateway, there is one worker Deployment per pool, each scaled on its own task queues.

Helm is built by `make helm` into .cache/bin (mk/helm.mk); no skipping when it is missing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from aiohttp import web

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.temporal_metrics import PoolCollector, PoolLoad
from hookline.settings import ComponentSettings, StackSettings
from schemas.agents import AgentCatalog
from schemas.workflow import parse_definition
from tests.conftest import ROOT
from triggers.app import status_app
from triggers.settings import TriggersSettings
from worker.app import health_app
from worker.metrics import WorkerMetrics
from worker.settings import WorkerOptions, WorkerSettings

CHART = ROOT / "deploy" / "helm" / "hookline"
HELM = ROOT / ".cache" / "bin" / "helm"
CRDS = Path(__file__).resolve().parent / "crds"
RULES = ROOT / "deploy" / "prometheus" / "hookline-rules.yaml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
NAMESPACE = "hookline"
#: The chart's kubeVersion floor and the newest Kubernetes kubernetes-validate carries.
KUBE_VERSIONS = ("1.27.0", kubernetes_validate.utils.latest_version())
#: Value sets: the defaults, and each ci/*-values.yaml file.
VALUE_SETS = {"default": None} | {p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*.yaml"))}
#: The settings class each component's process loads (`hookline <command>`).
SETTINGS: dict[str, type[ComponentSettings]] = {
    "gateway": GatewaySettings,
    "triggers": TriggersSettings,
    "worker": WorkerSettings,
    "init": StackSettings,
}
#: Where the Dockerfile puts the repository's examples/ in the image.
IMAGE_EXAMPLES = "/app/examples"

Manifest = dict[str, Any]


#: `make test` builds Helm beside the tests (Makefile): its process group, while it runs.
BUILD_PID = ROOT / ".cache" / "helm-build.pid"
BUILD_LOG = ROOT / ".cache" / "helm-build.log"


def _building() -> bool:
    try:
        os.kill(int(BUILD_PID.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    # These tests come last (tests/conftest.py), so the build has had the whole run to finish.
    deadline = time.monotonic() + 1800
    while _building() and time.monotonic() < deadline:  # not the binary: it may be half copied
        time.sleep(1)
    log = BUILD_LOG.read_text(errors="replace")[-2000:] if BUILD_LOG.is_file() else ""
    assert HELM.is_file(), f"{HELM} is missing: `make helm` builds it (mk/helm.mk)\n{log}"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, check=False)


def render(values: Path | None = None, *sets: str, release: str = "hookline") -> list[Manifest]:
    args = ["template", release, str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["--values", str(values)]
    for item in sets:
        args += ["--set", item]
    rendered = helm(*args)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def refused(*sets: str, values: Path | None = None) -> str:
    """helm template's error for values the chart must refuse."""
    args = ["template", "hookline", str(CHART)] + (["--values", str(values)] if values else [])
    for item in sets:
        args += ["--set", item]
    rendered = helm(*args)
    assert rendered.returncode != 0, f"the chart rendered {sets} instead of refusing them"
    return rendered.stderr


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def manifests(value_set: str) -> list[Manifest]:
    return render(VALUE_SETS[value_set])


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def component(manifest: Manifest) -> str:
    labels: dict[str, str] = manifest["metadata"]["labels"]
    return labels["app.kubernetes.io/component"]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def workloads(manifests: list[Manifest]) -> Iterator[Manifest]:
    yield from of_kind(manifests, "Deployment")
    yield from of_kind(manifests, "Job")


def container(workload: Manifest) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects `labels`."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        ok = {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def values_of(value_set: str) -> dict[str, Any]:
    """The chart's default values with the set's file over them (maps merged, lists replaced)."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {k: merge(base[k], v) if k in base else v for k, v in over.items()} | {
                k: v for k, v in base.items() if k not in over
            }
        return over

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    path = VALUE_SETS[value_set]
    merged: dict[str, Any] = merge(values, yaml.safe_load(path.read_text())) if path else values
    return merged


# ---------------------------------------------------------------------------------------------
# The chart as Helm and the API server see it


def test_the_chart_lints_with_every_value_set(value_set: str) -> None:
    path = VALUE_SETS[value_set]
    linted = helm("lint", "--strict", str(CHART), *(["--values", str(path)] if path else []))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "warning" not in linted.stderr.lower(), linted.stderr


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the CRD's schema, made strict: the API server prunes unknown fields
    of a custom resource in silence, so a misspelt field would be lost without this."""

    def strict(schema: Any) -> Any:
        if isinstance(schema, dict):
            schema = {k: strict(v) for k, v in schema.items()}
            if (
                "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")
            ):
                schema["additionalProperties"] = False
        elif isinstance(schema, list):
            schema = [strict(v) for v in schema]
        return schema

    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


CRD_SCHEMAS = _crd_schemas()


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_rendered_object_is_valid_for_the_kubernetes_api(manifests: list[Manifest], kube_version: str) -> None:
    problems = []
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        crd = CRD_SCHEMAS.get((manifest["apiVersion"], manifest["kind"]))
        try:
            if crd is not None:
                jsonschema.validate(manifest, crd)
            else:
                kubernetes_validate.validate(manifest, kube_version, strict=True)
        except jsonschema.ValidationError as exc:
            problems.append(f"{where}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}")
        except kubernetes_validate.utils.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc.message}")
    assert problems == []


def test_the_validation_catches_a_misspelt_field() -> None:
    """The validation above can fail: a misspelt field in a Deployment or a ScaledObject is refused."""
    manifests = render(VALUE_SETS["keda"])
    deployment = copy.deepcopy(of_kind(manifests, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)
    scaled = copy.deepcopy(of_kind(manifests, "ScaledObject")[0])
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")])


# ---------------------------------------------------------------------------------------------
# Probes, settings, secrets


def _get_routes(app: web.Application) -> set[str]:
    return {
        route.resource.canonical
        for route in app.router.routes()
        if route.method == "GET" and route.resource is not None
    }


def served_routes() -> dict[str, set[str]]:
    """The GET routes each component's HTTP server has (the gateway's app, the triggers' and the
    worker's status apps), built by the components' own code."""
    return {
        "gateway": _get_routes(create_app(GatewaySettings(), agents=AgentCatalog())),
        "triggers": _get_routes(status_app(lambda: None)),
        "worker": _get_routes(health_app(lambda: None, list, WorkerMetrics())),
    }


ROUTES = served_routes()


def test_probes_ask_the_routes_each_component_serves(manifests: list[Manifest]) -> None:
    for deployment in of_kind(manifests, "Deployment"):
        c = container(deployment)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        served = ROUTES[component(deployment)]
        probes = {kind: c[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        # Liveness restarts a pod whose loop is stuck; readiness keeps work away until it is connected.
        assert probes["livenessProbe"]["path"] == "/healthz"
        assert probes["readinessProbe"]["path"] == "/readyz"
        for kind, probe in probes.items():
            assert probe["path"] in served, f"{deployment['metadata']['name']} {kind} asks {probe['path']}"
            assert probe["port"] in ports, f"{deployment['metadata']['name']} {kind} port {probe['port']}"
        # The health checks answer within 2 s each; the probe waits longer than that.
        assert all(c[kind]["timeoutSeconds"] >= 3 for kind in probes)


def _secret_data(manifests: list[Manifest], name: str) -> dict[str, str] | None:
    """A Secret the chart renders (None: one managed outside the chart)."""
    secrets = [s for s in of_kind(manifests, "Secret") if s["metadata"]["name"] == name]
    return dict(secrets[0]["stringData"]) if secrets else None


def pod_files(manifests: list[Manifest], workload: Manifest) -> dict[str, str]:
    """Mount path → content of each file the container has from a ConfigMap or a Secret the
    chart renders; a file of the image (the examples) where the chart points at one."""
    spec, c = pod_spec(workload), container(workload)
    volumes = {v["name"]: v for v in spec["volumes"]}
    files: dict[str, str] = {}
    for mount in c["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            data = named(manifests, "ConfigMap", volume["configMap"]["name"])["data"]
            items = {i["key"]: i["path"] for i in volume["configMap"].get("items", [])} or {k: k for k in data}
        elif "secret" in volume:
            found = _secret_data(manifests, volume["secret"]["secretName"])
            if found is None:
                continue
            data, items = found, {k: k for k in found}
        else:
            continue
        if "subPath" in mount:
            files[mount["mountPath"]] = data[mount["subPath"]]
        else:
            files.update({f"{mount['mountPath']}/{path}": data[key] for key, path in items.items()})
    return files


def pod_environment(manifests: list[Manifest], workload: Manifest) -> tuple[dict[str, str], list[str]]:
    """The container's variables (its own, and those of the chart's Secrets it takes), and the
    names of Secrets it takes that the chart does not render."""
    c = container(workload)
    env = env_of(c)
    outside = []
    for source in c.get("envFrom", []):
        name = source["secretRef"]["name"]
        data = _secret_data(manifests, name)
        if data is None:
            outside.append(name)
        else:
            env = data | env
    return env, outside


def load_in_pod(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, manifests: list[Manifest], workload: Manifest
) -> ComponentSettings:
    """The settings the workload's process builds, in a copy of its file system under `tmp_path`
    (paths under /etc/hookline and the image's /app/examples moved there) and its environment."""
    files = pod_files(manifests, workload)
    env, _ = pod_environment(manifests, workload)

    def moved(text: str) -> str:
        return text.replace("/etc/hookline/", f"{tmp_path}/etc/hookline/").replace(
            f"{IMAGE_EXAMPLES}/", f"{ROOT}/examples/"
        )

    for path, content in files.items():
        target = Path(moved(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(moved(content))
    for key in [k for k in os.environ if k.startswith("HOOKLINE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, moved(value))
    config = Path(moved(env["HOOKLINE_CONFIG"]))
    assert config.is_file(), f"HOOKLINE_CONFIG {env['HOOKLINE_CONFIG']} is not mounted"
    command = container(workload)["args"][0]
    return SETTINGS[command].load(config)


def test_each_pod_builds_valid_settings_from_its_config_and_secrets(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Loaded with the code's settings classes: a bad key, an `{env: ...}` or `{file: ...}`
    reference the pod cannot resolve, or an unknown runner kind fails here as it would at start."""
    for index, workload in enumerate(workloads(manifests)):
        with monkeypatch.context() as patch:
            settings = load_in_pod(patch, tmp_path / str(index), manifests, workload)
        c = container(workload)
        section = container(workload)["args"][0]
        if section in ("gateway", "triggers", "worker"):
            options = getattr(settings, section)
            assert (options.host, options.port) == ("0.0.0.0", c["ports"][0]["containerPort"])
        if isinstance(settings, WorkerSettings):  # what `hookline worker --runner ...` makes of them
            args = c["args"]
            runners = [args[i + 1] for i, a in enumerate(args) if a == "--runner"]
            WorkerOptions.model_validate(
                {**settings.worker.model_dump(), "runners": runners or settings.worker.runners}
            )


def test_secret_references_resolve_in_the_pods_that_use_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ci/keda-values.yaml names a bearer token `{env: HOOKLINE_AM_TOKEN}`, a GitHub secret
    `{file: /etc/hookline/secrets/...}` and API tokens in HOOKLINE_API__TOKENS: the gateway gets
    each from the chart's Secrets."""
    manifests = render(VALUE_SETS["keda"])
    gateway = named(manifests, "Deployment", "hookline-gateway")
    settings = load_in_pod(monkeypatch, tmp_path, manifests, gateway)
    assert isinstance(settings, GatewaySettings)
    values = values_of("keda")["secrets"]
    bearer = settings.gateway.sources["alertmanager"].auth
    assert bearer is not None and bearer.bearer[0].secret.get_secret_value() == values["env"]["HOOKLINE_AM_TOKEN"]
    github = settings.gateway.sources["github"]
    assert github.secrets[0].secret.get_secret_value() == values["files"]["github-webhook-secret"]  # type: ignore[union-attr]
    assert [t.name for t in settings.api.tokens] == ["ops"]


def test_secrets_reach_the_gateway_and_the_workers_only(manifests: list[Manifest], value_set: str) -> None:
    secrets = values_of(value_set)["secrets"]
    env_secret = secrets["existingEnvSecret"] or ("hookline-env" if secrets["env"] else None)
    files_secret = secrets["existingFilesSecret"] or ("hookline-files" if secrets["files"] else None)
    for workload in workloads(manifests):
        c, volumes = container(workload), pod_spec(workload)["volumes"]
        takes = component(workload) in ("gateway", "worker")
        env_from = [s["secretRef"]["name"] for s in c.get("envFrom", [])]
        mounted = {v["secret"]["secretName"] for v in volumes if "secret" in v}
        assert env_from == ([env_secret] if takes and env_secret else [])
        assert mounted == ({files_secret} if takes and files_secret else set())
        if mounted:
            mount = next(m for m in c["volumeMounts"] if m["name"] == "secret-files")
            assert (mount["mountPath"], mount["readOnly"]) == ("/etc/hookline/secrets", True)
    # Rendered only when the chart has the values, never beside an existing Secret.
    rendered = {s["metadata"]["name"] for s in of_kind(manifests, "Secret")}
    assert rendered == {n for n, v in (("hookline-env", secrets["env"]), ("hookline-files", secrets["files"])) if v}


def test_changing_the_settings_rolls_the_pods() -> None:
    def checksums(*sets: str) -> dict[str, str]:
        gateway = named(render(None, *sets), "Deployment", "hookline-gateway")
        annotations: dict[str, str] = gateway["spec"]["template"]["metadata"]["annotations"]
        return annotations

    before = checksums()
    assert checksums("config.log.level=debug")["checksum/config"] != before["checksum/config"]
    assert checksums("secrets.env.X_TOKEN=abc")["checksum/secrets"] != before["checksum/secrets"]


# ---------------------------------------------------------------------------------------------
# The gateway: Service, PDB, HPA


def test_the_gateway_service_pdb_and_hpa_select_the_gateway_and_nothing_else(
    manifests: list[Manifest], value_set: str
) -> None:
    values = values_of(value_set)["gateway"]
    gateway = named(manifests, "Deployment", "hookline-gateway")
    others = [d for d in of_kind(manifests, "Deployment") if d is not gateway]
    service = named(manifests, "Service", "hookline-gateway")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(gateway))
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["ports"][0]["port"] == values["service"]["port"]
    assert not any(selects({"matchLabels": service["spec"]["selector"]}, pod_labels(d)) for d in others)
    pdbs = [p for p in of_kind(manifests, "PodDisruptionBudget") if component(p) == "gateway"]
    assert len(pdbs) == (1 if values["pdb"]["enabled"] else 0)
    for pdb in pdbs:
        assert selects(pdb["spec"]["selector"], pod_labels(gateway))
        assert not any(selects(pdb["spec"]["selector"], pod_labels(d)) for d in others)
    hpas = [h for h in of_kind(manifests, "HorizontalPodAutoscaler") if component(h) == "gateway"]
    assert len(hpas) == (1 if values["autoscaling"]["enabled"] else 0)
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", "hookline-gateway")
        assert "replicas" not in gateway["spec"]  # the HPA owns the count; an upgrade must not reset it
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert container(gateway)["resources"]["requests"]["cpu"]  # utilisation is of the request


# ---------------------------------------------------------------------------------------------
# Triggers


def test_triggers_replicas_stay_within_the_events_partitions(manifests: list[Manifest], value_set: str) -> None:
    triggers = named(manifests, "Deployment", "hookline-triggers")
    partitions = values_of(value_set)["config"]["kafka"]["events_partitions"]
    assert 1 <= triggers["spec"]["replicas"] <= partitions
    assert triggers["metadata"]["annotations"]["hookline.dev/events-partitions"] == str(partitions)


def test_more_triggers_replicas_than_partitions_are_refused() -> None:
    error = refused("triggers.replicas=7")
    assert "triggers.replicas (7) is more than the events topic's partitions" in error
    assert "events_partitions: 6" in error
    render(None, "triggers.replicas=12", "config.kafka.events_partitions=12")  # raised together: fine


# ---------------------------------------------------------------------------------------------
# Workers


def worker_deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """hookline.dev/pool → its worker Deployment."""
    return {
        d["metadata"]["labels"]["hookline.dev/pool"]: d
        for d in of_kind(manifests, "Deployment")
        if component(d) == "worker"
    }


def test_one_worker_deployment_per_pool_serving_its_runner_kinds(manifests: list[Manifest], value_set: str) -> None:
    pools = values_of(value_set)["worker"]["pools"]
    workers = worker_deployments(manifests)
    assert set(workers) == {p["name"] for p in pools} | {"interpreter"}
    for pool in pools:
        args = container(workers[pool["name"]])["args"]
        assert args[:2] == ["worker", "--no-workflows"]
        assert [args[i + 1] for i, a in enumerate(args) if a == "--runner"] == pool.get("runners", [pool["name"]])
    interpreter = container(workers["interpreter"])
    assert interpreter["args"] == ["worker"]
    assert env_of(interpreter)["HOOKLINE_WORKER__WORKFLOWS"] == "true"
    # Each Deployment's selector takes its own pods only.
    for name, deployment in workers.items():
        for other, od in workers.items():
            assert selects(deployment["spec"]["selector"], pod_labels(od)) == (name == other)


def test_the_worker_pools_poll_what_the_agents_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the agents of ci/keda-values.yaml, the pools each Deployment's worker would poll (the
    code's `served_pools`) are exactly the pool and its extraPools the chart scales it on."""
    from worker.app import served_pools

    manifests = render(VALUE_SETS["keda"])
    for pool in values_of("keda")["worker"]["pools"]:
        deployment = worker_deployments(manifests)[pool["name"]]
        with monkeypatch.context() as patch:
            settings = load_in_pod(patch, tmp_path / pool["name"], manifests, deployment)
        agents = AgentCatalog.load(settings.agents_file)
        kinds = pool.get("runners", [pool["name"]])
        assert served_pools(agents, kinds) == sorted([pool["name"], *pool.get("extraPools", [])])


async def no_loads() -> dict[str, PoolLoad]:
    return {}


def _queues_of_scaled_object(scaled: Manifest) -> set[str]:
    return {t["metadata"]["taskQueue"] for t in scaled["spec"]["triggers"]}


def test_workers_scale_on_their_own_task_queues(manifests: list[Manifest], value_set: str) -> None:
    values = values_of(value_set)
    temporal = WorkerSettings.model_validate({"temporal": values["config"]["temporal"]}).temporal
    workers = worker_deployments(manifests)
    scaled = {m["spec"]["scaleTargetRef"]["name"]: m for m in of_kind(manifests, "ScaledObject")}
    hpas = {
        m["spec"]["scaleTargetRef"]["name"]: m
        for m in of_kind(manifests, "HorizontalPodAutoscaler")
        if component(m) == "worker"
    }
    exported = {f.name for f in PoolCollector(no_loads).families({"p": PoolLoad(0, 0.0, 0)})}
    entries = [
        ("interpreter", values["worker"]["interpreter"], [temporal.task_queue], "workflow"),
        *(
            (p["name"], p, [temporal.runner_queue(q) for q in [p["name"], *p.get("extraPools", [])]], "activity")
            for p in values["worker"]["pools"]
        ),
    ]
    for pool, spec, queues, queue_type in entries:
        name = workers[pool]["metadata"]["name"]
        autoscaled = spec["autoscaling"]["enabled"]
        assert ("replicas" in workers[pool]["spec"]) is not autoscaled
        if not autoscaled:
            assert name not in scaled and name not in hpas
        elif values["keda"]["enabled"]:
            assert name not in hpas
            triggers = scaled[name]["spec"]["triggers"]
            assert _queues_of_scaled_object(scaled[name]) == set(queues)
            for trigger in triggers:
                meta = trigger["metadata"]
                assert trigger["type"] == "temporal"
                assert (meta["endpoint"], meta["namespace"]) == (temporal.address, temporal.namespace)
                assert (meta["queueTypes"], meta["targetQueueSize"]) == (
                    queue_type,
                    str(spec["autoscaling"]["targetBacklog"]),
                )
        else:
            assert name not in scaled
            metrics = hpas[name]["spec"]["metrics"]
            if queue_type == "workflow":  # no exported metric of the workflow task queue: CPU
                assert [m["resource"]["name"] for m in metrics] == ["cpu"]
                continue
            assert {m["external"]["metric"]["name"] for m in metrics} <= exported
            assert [m["external"]["metric"]["selector"]["matchLabels"]["pool"] for m in metrics] == [
                q.removeprefix(temporal.runner_queue_prefix) for q in queues
            ]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            [
                "worker.pools[0].name=a",
                "worker.pools[0].runners={shell}",
                "worker.pools[1].name=b",
                "worker.pools[1].runners={shell}",
            ],
            'runner kind "shell" is served by worker pools "a" and "b"',
        ),
        (["agents.x.runner=ssh"], 'agent "x" runs on runner kind "ssh", which no entry of worker.pools serves'),
        (["agents.x.runner=shell", "agents.x.pool=gpu"], 'add "gpu" to its extraPools'),
        (["config.temporal.local_pools={shell}"], "list their runner kinds in worker.interpreter.runners"),
        (["worker.pools[0].name=Shell_Pool"], "Shell_Pool"),
        (["worker.pools[0].name=interpreter"], "interpreter"),
        (["gateway.prot=8080"], "prot"),
        (["secrets.env.A=1", "secrets.existingEnvSecret=mine"], "secrets.env and secrets.existingEnvSecret"),
    ],
)
def test_values_that_cannot_work_are_refused_with_the_reason(sets: list[str], message: str) -> None:
    assert message in refused(*sets)


# ---------------------------------------------------------------------------------------------
# init, metrics, docs


def test_init_runs_as_a_hook_before_install_and_upgrade_with_the_definitions(
    manifests: list[Manifest], value_set: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = values_of(value_set)
    job = named(manifests, "Job", "hookline-init")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    config_map = named(manifests, "ConfigMap", "hookline-init")
    # Made before the Job (a lower weight), as the release's own ConfigMap does not exist yet.
    assert int(config_map["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert config_map["metadata"]["annotations"]["helm.sh/hook"] == job["metadata"]["annotations"]["helm.sh/hook"]
    args = container(job)["args"]
    assert args == [
        "init",
        *(["/etc/hookline/definitions"] if values["definitions"] else []),
        *values["init"]["extraPaths"],
    ]
    settings = load_in_pod(monkeypatch, tmp_path, manifests, job)
    agents = AgentCatalog.load(settings.agents_file)
    files = pod_files(manifests, job)
    for name, definition in values["definitions"].items():
        assert yaml.safe_load(files[f"/etc/hookline/definitions/{name}"]) == definition
        parse_definition(definition, agents=agents.agents.keys())  # what `hookline init` will store
    for path in values["init"]["extraPaths"]:
        assert (ROOT / "examples" / path.removeprefix(f"{IMAGE_EXAMPLES}/")).exists()


def test_init_can_be_left_out() -> None:
    manifests = render(None, "init.enabled=false")
    assert not of_kind(manifests, "Job")
    assert [m["metadata"]["name"] for m in of_kind(manifests, "ConfigMap")] == ["hookline"]


def rule_jobs() -> set[str]:
    text = RULES.read_text()
    jobs = set()
    for alternatives in re.findall(r'job=~"hookline-\(([a-z|]+)\)"', text):
        jobs |= {f"hookline-{name}" for name in alternatives.split("|")}
    jobs |= set(re.findall(r'job="(hookline-[a-z]+)"', text))
    return jobs


def test_the_service_monitor_scrapes_each_component_under_the_job_the_alerts_name(
    manifests: list[Manifest], value_set: str
) -> None:
    monitors = of_kind(manifests, "ServiceMonitor")
    assert len(monitors) == (1 if values_of(value_set)["serviceMonitor"]["enabled"] else 0)
    services = of_kind(manifests, "Service")
    jobs = {s["metadata"]["labels"].get("hookline.dev/job") for s in services} - {None}
    assert jobs == rule_jobs() == {"hookline-gateway", "hookline-triggers", "hookline-worker"}
    for monitor in monitors:
        spec = monitor["spec"]
        scraped = [s for s in services if selects(spec["selector"], s["metadata"]["labels"])]
        assert {s["metadata"]["labels"]["hookline.dev/job"] for s in scraped} == jobs
        assert spec["jobLabel"] == "hookline.dev/job"
        (endpoint,) = spec["endpoints"]
        assert endpoint["path"] == "/metrics"
        for service in scraped:
            assert [p["name"] for p in service["spec"]["ports"]] == [endpoint["port"]]
            pods = [
                d
                for d in of_kind(manifests, "Deployment")
                if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(d))
            ]
            assert pods and all("/metrics" in ROUTES[component(d)] for d in pods)


def test_the_alertmanager_receiver_in_the_docs_reaches_the_gateway_service() -> None:
    """docs/deploy.md's webhook_configs snippet names the Service a release `hookline` in the
    namespace `hookline` renders, its port, and the alertmanager source's route."""
    blocks = re.findall(r"```yaml\n(.*?)```", DEPLOY_DOC.read_text(), re.S)
    receivers = [yaml.safe_load(b) for b in blocks if "webhook_configs" in b]
    assert receivers, "docs/deploy.md has no Alertmanager webhook_configs snippet"
    urls = [c["url"] for doc in receivers for r in doc["receivers"] for c in r["webhook_configs"]]
    service = named(render(None), "Service", "hookline-gateway")
    expected = f"http://hookline-gateway.{NAMESPACE}.svc:{service['spec']['ports'][0]['port']}/hooks/alertmanager"
    assert expected in urls
    assert "/hooks/alertmanager" in {
        r.canonical for r in create_app(GatewaySettings(), agents=AgentCatalog()).router.resources()
    }


def test_the_rendered_values_schema_is_valid_json_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


def test_a_component_can_run_another_image_tag_for_an_upgrade_in_steps() -> None:
    """docs/deploy.md's upgrade order: workers first, then triggers, then the gateway."""
    manifests = render(None, "image.tag=1.0.0", "worker.imageTag=1.1.0")
    images = {w["metadata"]["name"]: container(w)["image"] for w in workloads(manifests)}
    assert images == {
        "hookline-gateway": "hookline:1.0.0",
        "hookline-triggers": "hookline:1.0.0",
        "hookline-worker-interpreter": "hookline:1.1.0",
        "hookline-worker-shell": "hookline:1.1.0",
        "hookline-init": "hookline:1.0.0",
    }
