"""Settings: defaults, config file, environment precedence, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings
from hookline.settings import CONFIG_SECTIONS, ComponentSettings, SettingsError, StackSettings
from triggers.settings import TriggersSettings
from worker.settings import WorkerSettings


def test_environment_overrides_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text("kafka:\n  bootstrap_servers: file:9092\n  topic_prefix: fromfile\ngateway:\n  port: 9000\n")
    monkeypatch.setenv("HOOKLINE_KAFKA__BOOTSTRAP_SERVERS", "env:9092")
    settings = GatewaySettings.load(config)
    assert settings.kafka.bootstrap_servers == "env:9092"
    assert settings.kafka.topic_prefix == "fromfile"
    assert settings.gateway.port == 9000
    assert settings.kafka.events_topic == "fromfile.events"


def test_one_config_file_serves_every_component(tmp_path: Path) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text("gateway:\n  port: 9000\ntriggers:\n  group_id: g1\n")
    assert TriggersSettings.load(config).triggers.group_id == "g1"
    assert GatewaySettings.load(config).gateway.port == 9000


def test_invalid_settings_name_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_GATEWAY__PORT", "eighty")
    with pytest.raises(SettingsError, match=r"gateway\.port"):
        GatewaySettings.load()


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        GatewaySettings.load(tmp_path / "nope.yaml")


def test_misspelt_variable_inside_a_section_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_KAFKA__BOOTSTRAP_SERVER", "kafka:9092")
    with pytest.raises(SettingsError, match=r"kafka\.bootstrap_server"):
        GatewaySettings.load()


def test_misspelt_key_in_the_config_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text("triggers:\n  group: g1\n")
    with pytest.raises(SettingsError, match=r"triggers\.group"):
        TriggersSettings.load(config)


def test_misspelt_section_in_the_config_file_is_an_error_naming_the_known_ones(tmp_path: Path) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text("triggers:\n  group_id: g1\ntrigers:\n  concurrency: 8\n")
    with pytest.raises(SettingsError, match=r"unknown section trigers; the sections are .*\btriggers\b") as refused:
        GatewaySettings.load(config)
    assert "worker" in str(refused.value) and str(config) in str(refused.value)


def test_the_known_sections_are_those_of_every_component_together() -> None:
    components = (GatewaySettings, TriggersSettings, WorkerSettings, StackSettings)
    assert set().union(*(c.model_fields for c in components)) == CONFIG_SECTIONS


def test_a_component_section_missing_from_the_known_ones_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="surprise"):
        type("Surprising", (ComponentSettings,), {"__annotations__": {"surprise": int}, "surprise": 1})


def test_the_interpreter_needs_more_workflow_task_slots_than_polls() -> None:
    with pytest.raises(
        ValueError, match=r"max_concurrent_workflow_tasks \(10\) must be more than workflow_task_pollers"
    ):
        WorkerSettings.model_validate({"worker": {"max_concurrent_workflow_tasks": 10}})
    options = WorkerSettings.model_validate({"worker": {"max_concurrent_workflow_tasks": 11}}).worker
    assert (options.max_concurrent_workflow_tasks, options.workflow_task_pollers) == (11, 10)
