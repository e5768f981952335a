"""API tokens: configuration, lookup, scopes and teams."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from gateway.api.auth import TokenTable
from gateway.errors import Forbidden, Unauthorized
from gateway.settings import ApiOptions, ApiToken, GatewaySettings
from hookline.settings import SettingsError

TEAM_A = ApiToken(name="ci", token=SecretStr("a-long-secret-token"), team="team-a", scopes=["read", "execute"])
OPERATOR = ApiToken(name="ops", token=SecretStr("operator-secret-token"), team="*", scopes=["read"])


@pytest.fixture
def table() -> TokenTable:
    return TokenTable([TEAM_A, OPERATOR])


def test_bearer_token_names_its_team_and_scopes(table: TokenTable) -> None:
    caller = table.authenticate("Bearer a-long-secret-token")
    assert (caller.name, caller.team, caller.scopes) == ("ci", "team-a", frozenset({"read", "execute"}))


def test_scheme_is_case_insensitive_and_spaces_are_ignored(table: TokenTable) -> None:
    assert table.authenticate("  bearer   a-long-secret-token ").name == "ci"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_token_is_unauthorized_without_invalid_token_error(table: TokenTable, header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        table.authenticate(header)
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="hookline"'


@pytest.mark.parametrize(
    "header", ["Bearer wrong", "Basic YTpi", "Bearer", "a-long-secret-token", "Bearer a-long-secret-token2"]
)
def test_wrong_token_is_unauthorized_and_not_echoed(table: TokenTable, header: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        table.authenticate(header)
    assert 'error="invalid_token"' in caught.value.headers["WWW-Authenticate"]
    assert "secret" not in caught.value.detail and "wrong" not in caught.value.detail


def test_header_with_characters_outside_ascii_is_just_a_wrong_token(table: TokenTable) -> None:
    with pytest.raises(Unauthorized):
        table.authenticate("Bearer caf\udce9")


def test_missing_scope_is_forbidden_and_names_it(table: TokenTable) -> None:
    caller = table.authenticate("Bearer a-long-secret-token")
    caller.require("execute")
    with pytest.raises(Forbidden, match='"write"'):
        caller.require("write")


def test_team_token_sees_its_team_only(table: TokenTable) -> None:
    caller = table.authenticate("Bearer a-long-secret-token")
    assert caller.sees("team-a") and not caller.sees("team-b") and not caller.operator


def test_operator_token_sees_every_team(table: TokenTable) -> None:
    caller = table.authenticate("Bearer operator-secret-token")
    assert caller.operator and caller.sees("team-a") and caller.sees("default")


def test_table_keeps_no_secret(table: TokenTable) -> None:
    assert "a-long-secret-token" not in repr(vars(table))


def test_short_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        ApiToken(name="x", token=SecretStr("short"), team="t", scopes=["read"])


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(ValidationError):
        ApiToken.model_validate({"name": "x", "token": "a-long-secret-token", "team": "t", "scopes": ["admin"]})


def test_token_without_scopes_is_refused() -> None:
    with pytest.raises(ValidationError):
        ApiToken(name="x", token=SecretStr("a-long-secret-token"), team="t", scopes=[])


def test_two_entries_with_one_secret_are_refused() -> None:
    twin = TEAM_A.model_copy(update={"name": "twin"})
    with pytest.raises(ValidationError, match="share the same token"):
        ApiOptions(tokens=[TEAM_A, twin])


def test_two_entries_with_one_name_are_refused() -> None:
    twin = OPERATOR.model_copy(update={"name": TEAM_A.name})
    with pytest.raises(ValidationError, match="distinct"):
        ApiOptions(tokens=[TEAM_A, twin])


def test_tokens_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "HOOKLINE_API__TOKENS", '[{"name": "ci", "token": "env-secret-token-123", "team": "t", "scopes": ["read"]}]'
    )
    [token] = GatewaySettings.load().api.tokens
    assert (token.name, token.token.get_secret_value(), token.scopes) == ("ci", "env-secret-token-123", ["read"])


def test_settings_error_for_a_bad_token_does_not_show_the_secret(tmp_path: Path) -> None:
    config = tmp_path / "hookline.yaml"
    config.write_text("api:\n  tokens:\n    - {name: x, token: tooshort, team: t, scopes: [read]}\n")
    with pytest.raises(SettingsError) as caught:
        GatewaySettings.load(config)
    assert "api.tokens.0.token" in str(caught.value) and "tooshort" not in str(caught.value)


def test_secret_is_hidden_in_the_settings_repr() -> None:
    assert "a-long-secret-token" not in repr(ApiOptions(tokens=[TEAM_A]))
