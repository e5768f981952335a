"""Settings: defaults, config file, environment precedence, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings
from hookline.settings import SettingsError
from triggers.settings import TriggersSettings


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
