"""`gateway.sources`: the plain `{name: kind}` form, per-source objects, and secrets that come
from the environment or files and never show up in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewayOptions, GatewaySettings
from gateway.sources import AlertmanagerSource, GithubSource, JsonSource, build_sources
from gateway.sources.config import AlertmanagerConfig, GithubConfig
from hookline.settings import SettingsError

SECRET = "s3cret-value-that-is-long-enough"


def test_the_plain_name_to_kind_form_still_works() -> None:
    options = GatewayOptions(sources={"am": "alertmanager", "events": "cloudevents"})
    assert isinstance(options.sources["am"], AlertmanagerConfig)
    assert options.sources["events"].kind == "cloudevents"


def test_by_default_one_alertmanager_source_is_configured() -> None:
    sources = build_sources(GatewayOptions().sources)
    assert list(sources) == ["alertmanager"]
    assert isinstance(sources["alertmanager"], AlertmanagerSource)
    assert sources["alertmanager"].guard.open


def test_object_form_builds_the_kind_with_its_options() -> None:
    options = GatewayOptions(
        sources={
            "orders": {"kind": "json", "dedupe_field": "order.id", "type": "com.example.order"},
            "gh": {"kind": "github", "secrets": [{"value": SECRET}]},
        }
    )
    sources = build_sources(options.sources)
    assert isinstance(sources["orders"], JsonSource) and sources["orders"].kind == "json"
    assert isinstance(sources["gh"], GithubSource) and not sources["gh"].guard.open


def test_an_unknown_kind_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="standard-webhooks"):
        GatewayOptions(sources={"x": "smtp"})


@pytest.mark.parametrize("name", ["a/b", "", "with space"])
def test_source_names_must_fit_in_a_url_path(name: str) -> None:
    with pytest.raises(ValueError):
        GatewayOptions(sources={name: "alertmanager"})


def test_signature_kinds_need_secrets() -> None:
    with pytest.raises(ValueError, match="secrets"):
        GatewayOptions(sources={"gh": "github"})


def test_alertmanager_sources_refuse_a_rate_limit() -> None:
    with pytest.raises(ValueError, match="429"):
        GatewayOptions(sources={"am": {"kind": "alertmanager", "rate_limit": {"per_second": 10}}})


def test_a_secret_comes_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_TEST_GH_SECRET", SECRET)
    config = GithubConfig(secrets=[{"env": "HOOKLINE_TEST_GH_SECRET"}])  # type: ignore[list-item]
    assert config.secrets[0].secret.get_secret_value() == SECRET


def test_a_secret_comes_from_a_file_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    config = GithubConfig(secrets=[{"file": tmp_path / "secret"}])  # type: ignore[list-item]
    assert config.secrets[0].secret.get_secret_value() == SECRET


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(ValueError, match="HOOKLINE_TEST_UNSET is not set"):
        GithubConfig(secrets=[{"env": "HOOKLINE_TEST_UNSET"}])  # type: ignore[list-item]


def test_a_secret_names_exactly_one_origin() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        GithubConfig(secrets=[{"env": "X", "value": SECRET}])  # type: ignore[list-item]


def test_a_bad_source_configuration_never_echoes_an_inline_secret(tmp_path: Path) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text(
        "gateway:\n  sources:\n    gh:\n      kind: github\n"
        f"      secrets: [{{value: {SECRET}, env: ALSO}}]\n"
        f"      auth: {{bearer: [{{value: {SECRET}x}}]}}\n"
    )
    with pytest.raises(SettingsError) as info:
        GatewaySettings.load(config)
    assert "gateway.sources.gh" in str(info.value)
    assert SECRET not in str(info.value)
    with pytest.raises(ValueError) as direct:
        GatewaySettings(gateway={"sources": {"gh": {"kind": "github", "secrets": [{"value": SECRET, "env": "X"}]}}})
    assert SECRET not in str(direct.value)


def test_secrets_are_masked_in_the_settings_repr() -> None:
    config = GithubConfig(secrets=[{"value": SECRET}])  # type: ignore[list-item]
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_credential_headers_cannot_be_kept_on_events() -> None:
    with pytest.raises(ValueError, match="authorization"):
        GatewayOptions(sources={"j": {"kind": "json", "keep_headers": ["Authorization"]}})


def test_a_schema_file_that_is_not_a_json_schema_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"type": "no-such-type"}')
    with pytest.raises(ValueError, match="not a JSON Schema"):
        GatewayOptions(sources={"j": {"kind": "json", "schema_file": tmp_path / "bad.json"}})


def test_standard_webhooks_secrets_must_be_base64() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        GatewayOptions(sources={"s": {"kind": "standard-webhooks", "secrets": [{"value": "whsec_not*base64*at*all"}]}})


def test_ticks_are_off_unless_enabled() -> None:
    assert GatewayOptions().ticks.enabled is False
