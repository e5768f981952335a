"""Teams: definition ids scoped by team, agents limited to teams, tick credentials bound to a team."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gateway.errors import InvalidCredentials, MissingCredentials
from gateway.sources.config import AuthConfig, SecretRef, TicksConfig
from gateway.ticks import team_guards
from hookline.definitions import StoredDefinition
from hookline.runs import NotStartable, build_request
from hookline.settings import TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import StepRequest
from schemas.workflow import DefinitionError, agent_errors, parse_definition, qualified_id, split_id
from worker.activities import StepActivities


def seed(**extra: Any) -> dict[str, Any]:
    return {"name": "Deploy Application", "steps": [{"name": "deploy", "agent": "deployer"}], **extra}


# --- ids scoped by team -------------------------------------------------------------------------


def test_the_default_team_keeps_its_plain_ids() -> None:
    definition = parse_definition(seed())
    assert (definition.id, definition.team) == ("deploy-application", "default")


def test_another_team_same_name_has_an_id_of_its_own() -> None:
    definition = parse_definition(seed(team_id="team-uuid"))
    assert (definition.id, definition.team) == ("team-uuid~deploy-application", "team-uuid")


@pytest.mark.parametrize(
    ("doc_id", "team_id", "expected"),
    [
        ("build", "team-a", ("team-a~build", "team-a")),
        ("team-a~build", "team-a", ("team-a~build", "team-a")),
        ("team-a~build", None, ("team-a~build", "team-a")),  # the id names the team
        ("default~build", None, ("build", "default")),
        ("build", "default", ("build", "default")),
    ],
)
def test_a_written_id_is_qualified_by_its_team(doc_id: str, team_id: str | None, expected: tuple[str, str]) -> None:
    doc = seed(id=doc_id) | ({"team_id": team_id} if team_id else {})
    definition = parse_definition(doc)
    assert (definition.id, definition.team) == expected


def test_an_id_naming_another_team_than_team_id_is_refused_at_id() -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(seed(id="team-b~build", team_id="team-a"))
    assert [e.location for e in refused.value.errors] == ["id"]


@pytest.mark.parametrize("team", ["team a", "team~a", "a:b", "a/b", "a@b", "", "-a"])
def test_a_team_id_that_cannot_be_part_of_an_id_is_refused(team: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(seed(team_id=team))
    assert "team_id" in [e.location for e in refused.value.errors]


@pytest.mark.parametrize("definition_id", ["build", "team-a~build", "Team.A_1~build.v2"])
def test_split_undoes_qualify(definition_id: str) -> None:
    assert qualified_id(*split_id(definition_id)) == definition_id


# --- agents limited to teams --------------------------------------------------------------------

CATALOG = AgentCatalog(
    agents={
        "deployer": Agent(name="deployer", command=("true",), teams=("team-prod",)),
        "builder": Agent(name="builder", command=("true",)),
    }
)


def test_an_agent_without_teams_serves_every_team() -> None:
    assert set(CATALOG.for_team("anyone")) == {"builder"}
    assert set(CATALOG.for_team("team-prod")) == {"builder", "deployer"}


def test_a_definition_naming_an_agent_of_other_teams_is_told_it_is_unknown_at_its_location() -> None:
    definition = parse_definition(seed(team_id="team-dev"))
    errors = agent_errors(definition, CATALOG.for_team(definition.team))
    assert [(e.location, e.message) for e in errors] == [("steps[0].agent", 'unknown agent "deployer"')]
    allowed = parse_definition(seed(team_id="team-prod"))
    assert agent_errors(allowed, CATALOG.for_team(allowed.team)) == []


def test_agents_file_limits_an_agent_to_teams(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "agents:\n  deployer:\n    command: ['true']\n    teams: [team-prod]\n  builder:\n    command: ['true']\n"
    )
    catalog = AgentCatalog.load(path)
    assert (catalog.agents["deployer"].teams, catalog.agents["builder"].teams) == (("team-prod",), None)


def stored(doc: dict[str, Any]) -> StoredDefinition:
    definition = parse_definition(doc)
    return StoredDefinition(definition.id, 1, "digest", doc, definition)


def test_an_old_definition_naming_an_agent_of_other_teams_does_not_start() -> None:
    with pytest.raises(NotStartable, match="unknown agent 'deployer'"):
        build_request(stored(seed(team_id="team-dev")), CATALOG, TemporalSettings())
    assert build_request(stored(seed(team_id="team-prod")), CATALOG, TemporalSettings()).routes["deploy"].agent


async def test_the_worker_refuses_a_step_of_a_team_the_agent_is_not_for() -> None:
    activities = StepActivities(CATALOG, {}, inline_runners=frozenset())
    request = StepRequest(workflow_id="wf", step="deploy", agent="deployer", input={}, team_id="team-dev")
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.run_step, request)
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)
    assert "team-dev" in str(failed.value)


# --- tick credentials bound to a team -----------------------------------------------------------


def bearer(secret: str) -> AuthConfig:
    return AuthConfig(bearer=[SecretRef(value=SecretStr(secret))])


def header(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


TICKS = TicksConfig(
    enabled=True,
    auth=bearer("operator-tick-secret"),
    teams={"team-a": bearer("team-a-tick-secret"), "default": bearer("default-tick-secret")},
)


@pytest.mark.parametrize(
    ("definition", "secret"),
    [
        ("team-a~nightly", "team-a-tick-secret"),
        ("nightly", "default-tick-secret"),
        ("team-a~nightly", "operator-tick-secret"),
        ("team-b~nightly", "operator-tick-secret"),
    ],
)
def test_a_tick_credential_ticks_its_own_team(definition: str, secret: str) -> None:
    team_guards(TICKS)(split_id(definition)[0]).check_headers(header(secret))


@pytest.mark.parametrize(
    ("definition", "secret"),
    [
        ("team-b~nightly", "team-a-tick-secret"),  # another team's schedule
        ("nightly", "team-a-tick-secret"),  # the default team's
        ("team-a~nightly", "default-tick-secret"),
        ("team-b~nightly", "default-tick-secret"),  # a team without credentials of its own
    ],
)
def test_a_tick_credential_cannot_tick_another_team(definition: str, secret: str) -> None:
    with pytest.raises(InvalidCredentials):
        team_guards(TICKS)(split_id(definition)[0]).check_headers(header(secret))


def test_with_team_credentials_and_no_operator_credential_a_team_without_any_is_closed() -> None:
    guards = team_guards(TicksConfig(enabled=True, teams={"team-a": bearer("team-a-tick-secret")}))
    with pytest.raises(MissingCredentials):
        guards("team-b").check_headers({})
    with pytest.raises(InvalidCredentials):
        guards("team-b").check_headers(header("team-a-tick-secret"))


def test_without_team_credentials_ticks_stay_as_configured() -> None:
    team_guards(TicksConfig(enabled=True))("team-b").check_headers({})  # open, as before
