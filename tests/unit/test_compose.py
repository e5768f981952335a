"""compose.yaml and the Dockerfile agree with the code: settings, CLI, ports, topics, search attributes.

No Docker here: the files are read as data and checked against what the code expects.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import hookline.cli
from gateway.settings import GatewaySettings
from hookline.settings import ComponentSettings, StackSettings
from hookline.stack import DEV_DYNAMIC_CONFIG
from hookline.temporal import SEARCH_ATTRIBUTES
from tests.conftest import ROOT
from triggers.settings import TriggersSettings
from worker.settings import WorkerSettings

COMPONENTS: dict[str, type[ComponentSettings]] = {
    "gateway": GatewaySettings,
    "triggers": TriggersSettings,
    "worker": WorkerSettings,
}
# Every service that runs Hookline code, with the settings class its process loads.
HOOKLINE_SERVICES: dict[str, type[ComponentSettings]] = {**COMPONENTS, "init": StackSettings}
OFFICIAL_IMAGES = {"kafka": "apache/kafka", "temporal": "temporalio/temporal"}
# Read by the CLI (`--config`), not by the settings classes.
CLI_VARIABLES = {"HOOKLINE_CONFIG"}
# Services that serve /healthz and publish their port, with the settings section that holds it.
HTTP_SECTIONS = {"gateway": "gateway", "triggers": "triggers", "worker": "worker"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[list[str]]:
    """The final stage's instructions, each as [INSTRUCTION, rest of the line]."""
    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[list[str]]] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append([instruction.upper(), rest.strip()])
    return stages[-1]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _load_settings(monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], name: str) -> Any:
    """The settings the service's process builds from its compose environment alone."""
    for key in list(os.environ):
        if key.startswith("HOOKLINE_"):
            monkeypatch.delenv(key)
    for key, value in _environment(services[name]).items():
        monkeypatch.setenv(key, value)
    return HOOKLINE_SERVICES[name].load()


def _is_setting(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    inner = field.annotation
    return isinstance(inner, type) and issubclass(inner, BaseModel) and _is_setting(inner, path[1:])


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, part in enumerate(argv[:-1]) if part == option]


def _published_container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        target = entry["target"] if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1].split("/")[0]
        ports.add(int(target))
    return ports


def _advertised_addresses(kafka: dict[str, Any]) -> set[str]:
    listeners = _environment(kafka)["KAFKA_ADVERTISED_LISTENERS"].split(",")
    return {listener.split("://", 1)[1] for listener in listeners}


def _repo_path_of_image_path(dockerfile: list[list[str]], image_path: str) -> Path | None:
    """Where in the repository a path in the image comes from, following the final stage's COPYs."""
    for instruction, rest in dockerfile:
        parts = [p for p in rest.split() if not p.startswith("--")]
        if instruction != "COPY" or len(parts) != 2:
            continue
        source, dest = parts[0].rstrip("/"), parts[1].rstrip("/")
        if image_path == dest or image_path.startswith(dest + "/"):
            return ROOT / source / image_path[len(dest) :].lstrip("/")
    return None


def test_compose_defines_the_stack_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "temporal", "init", "gateway", "triggers", "worker"} <= set(services)


@pytest.mark.parametrize(("service", "repository"), sorted(OFFICIAL_IMAGES.items()))
def test_infrastructure_uses_the_official_image(
    services: dict[str, dict[str, Any]], service: str, repository: str
) -> None:
    image_repository, _, _ = services[service]["image"].rpartition(":")
    assert image_repository == repository


def test_every_image_is_pinned_to_a_tag(services: dict[str, dict[str, Any]]) -> None:
    unpinned = {}
    for name, service in services.items():
        if "image" not in service:
            continue
        _, colon, tag = service["image"].rpartition(":")
        if not colon or "/" in tag or tag in ("", "latest"):
            unpinned[name] = service["image"]
    assert unpinned == {}


@pytest.mark.parametrize("service", sorted(HOOKLINE_SERVICES))
def test_hookline_services_are_built_from_the_dockerfile(services: dict[str, dict[str, Any]], service: str) -> None:
    build = services[service].get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context == "."


@pytest.mark.parametrize("service", sorted(COMPONENTS))
def test_component_command_is_its_hookline_subcommand(services: dict[str, dict[str, Any]], service: str) -> None:
    command = _command(services[service])
    assert "entrypoint" not in services[service], "the image's ENTRYPOINT (hookline) must run the command"
    assert command[:1] == [service]
    assert command[0] in hookline.cli.cli.commands


@pytest.mark.parametrize("service", sorted(HOOKLINE_SERVICES))
def test_every_hookline_variable_names_a_setting(services: dict[str, dict[str, Any]], service: str) -> None:
    settings_cls = HOOKLINE_SERVICES[service]
    unknown = [
        name
        for name in _environment(services[service])
        if name.startswith("HOOKLINE_")
        and name not in CLI_VARIABLES
        and not _is_setting(settings_cls, name.removeprefix("HOOKLINE_").lower().split("__"))
    ]
    assert unknown == []


@pytest.mark.parametrize("service", sorted(HOOKLINE_SERVICES))
def test_compose_environment_validates_as_the_service_settings(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], service: str
) -> None:
    settings = _load_settings(monkeypatch, services, service)
    assert isinstance(settings, HOOKLINE_SERVICES[service])


@pytest.mark.parametrize("service", sorted(HOOKLINE_SERVICES))
def test_bootstrap_servers_are_the_brokers_advertised_listener(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], service: str
) -> None:
    settings = _load_settings(monkeypatch, services, service)
    in_network = {a for a in _advertised_addresses(services["kafka"]) if a.rpartition(":")[0] == "kafka"}
    assert in_network, "kafka must advertise a listener under its service name"
    assert settings.kafka.bootstrap_servers in in_network


@pytest.mark.parametrize("service", sorted(HOOKLINE_SERVICES))
def test_temporal_address_is_the_temporal_service_port(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], service: str
) -> None:
    settings = _load_settings(monkeypatch, services, service)
    # `temporal server start-dev` serves the frontend on 7233 unless --port says otherwise.
    port = (_option_values(_command(services["temporal"]), "--port") or ["7233"])[-1]
    assert settings.temporal.address == f"temporal:{port}"


def test_temporal_listens_beyond_its_container(services: dict[str, dict[str, Any]]) -> None:
    assert _option_values(_command(services["temporal"]), "--ip") == ["0.0.0.0"]


def test_temporal_registers_hooklines_search_attributes(services: dict[str, dict[str, Any]]) -> None:
    registered = dict(
        spec.split("=", 1) for spec in _option_values(_command(services["temporal"]), "--search-attribute")
    )
    assert registered == SEARCH_ATTRIBUTES


def test_temporal_runs_with_the_dev_servers_dynamic_config(services: dict[str, dict[str, Any]]) -> None:
    values = dict(
        spec.split("=", 1) for spec in _option_values(_command(services["temporal"]), "--dynamic-config-value")
    )
    assert values == DEV_DYNAMIC_CONFIG


@pytest.mark.parametrize(("service", "section"), sorted(HTTP_SECTIONS.items()))
def test_published_port_is_the_one_the_component_listens_on(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], service: str, section: str
) -> None:
    options = getattr(_load_settings(monkeypatch, services, service), section)
    assert _published_container_ports(services[service]) == {options.port}


@pytest.mark.parametrize(("service", "section"), sorted(HTTP_SECTIONS.items()))
def test_published_component_listens_on_all_interfaces(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], service: str, section: str
) -> None:
    options = getattr(_load_settings(monkeypatch, services, service), section)
    assert options.host == "0.0.0.0"


@pytest.mark.parametrize(("service", "section"), sorted(HTTP_SECTIONS.items()))
def test_healthcheck_probes_healthz_on_the_component_port(
    monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]], service: str, section: str
) -> None:
    options = getattr(_load_settings(monkeypatch, services, service), section)
    probe = " ".join(services[service]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{options.port}/healthz" in probe


def test_services_waiting_for_health_have_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    waited_on = {
        target
        for service in services.values()
        for target, spec in (service.get("depends_on") or {}).items()
        if isinstance(spec, dict) and spec.get("condition") == "service_healthy"
    }
    assert waited_on, "nothing waits for a healthy dependency"
    assert {name for name in waited_on if "healthcheck" not in services[name]} == set()


@pytest.mark.parametrize("service", ["gateway", "triggers"])
def test_kafka_users_start_after_init_created_the_topics(services: dict[str, dict[str, Any]], service: str) -> None:
    depends_on = services[service].get("depends_on") or {}
    assert depends_on.get("init", {}).get("condition") == "service_completed_successfully"


def test_init_runs_hookline_init_on_the_example_definitions(
    services: dict[str, dict[str, Any]], dockerfile: list[list[str]]
) -> None:
    init = services["init"]
    assert "entrypoint" not in init  # the image's ENTRYPOINT, hookline
    subcommand, *paths = init["command"]
    assert subcommand == "init"
    assert subcommand in hookline.cli.cli.commands
    assert paths
    for path in paths:
        in_repo = _repo_path_of_image_path(dockerfile, path)
        assert in_repo is not None and sorted(in_repo.glob("*.yaml")), f"{path} holds no definitions in the image"


@pytest.mark.parametrize("service", ["triggers", "worker"])
def test_agents_file_is_copied_into_the_image(
    monkeypatch: pytest.MonkeyPatch,
    services: dict[str, dict[str, Any]],
    dockerfile: list[list[str]],
    service: str,
) -> None:
    agents_file = _load_settings(monkeypatch, services, service).agents_file
    assert agents_file is not None
    in_repo = _repo_path_of_image_path(dockerfile, str(agents_file))
    assert in_repo is not None and in_repo.is_file()


def test_image_entrypoint_is_hookline(dockerfile: list[list[str]]) -> None:
    entrypoints = [json.loads(rest) for instruction, rest in dockerfile if instruction == "ENTRYPOINT"]
    assert entrypoints[-1:] == [["hookline"]]


def test_image_copies_the_examples(dockerfile: list[list[str]]) -> None:
    assert _repo_path_of_image_path(dockerfile, "/app/examples") == ROOT / "examples"


def test_image_runs_as_a_non_root_user(dockerfile: list[list[str]]) -> None:
    users = [rest.split(":")[0] for instruction, rest in dockerfile if instruction == "USER"]
    assert users, "the image must name a USER"
    assert users[-1] not in ("root", "0")


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()}
    assert {".git", ".venv", ".cache", ".data"} <= ignored


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()}
    copied = {
        source.rstrip("/")
        for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()
        if re.match(r"^COPY\s", line) and "--from" not in line
        for source in [p for p in line.split()[1:] if not p.startswith("--")][:-1]
    }
    assert copied, "the Dockerfile copies nothing from the build context"
    assert copied & ignored == set()
