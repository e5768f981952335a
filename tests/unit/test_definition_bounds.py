"""What a definition may ask for is bounded when it is parsed: schedules that can fire, and a
dependency graph of limited size that is checked without recursion."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import ApiOptions, ApiToken, GatewaySettings
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.agents import AgentCatalog
from schemas.workflow import MAX_STEPS, DefinitionError, dependency_cycle, parse_definition


def scheduled(*crons: str, **trigger: Any) -> dict[str, Any]:
    return {"name": "x", "trigger": [{"type": "schedule", "cron": c, **trigger} for c in crons]}


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 30 2 *",  # the 30th of February
        "0 0 31 4 *",  # the 31st of April
        "0 0 31 2,4,6,9,11 *",  # the 31st of months that have 30 days or fewer
        "0 0 0 30 2 *",  # seconds first
        "0 0 31 6 1#5",  # the 31st of June, or its fifth Monday
    ],
)
def test_a_schedule_that_never_fires_is_rejected_with_its_location(cron: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(scheduled("0 2 * * *", cron))
    [error] = info.value.errors
    assert error.location == "trigger[1].cron"
    assert "never fires" in error.message
    assert repr(cron) in error.message


def test_a_single_trigger_is_located_without_an_index() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "trigger": {"type": "schedule", "cron": "0 0 30 2 *"}})
    assert [e.location for e in info.value.errors] == ["trigger.cron"]


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 29 2 *",  # every four years
        "0 0 * 2 1#5",  # the fifth Monday of February: every 28 years or so
        "0 0 L 2 *",
        "0 0 31 * *",
        "*/5 * * * * *",
    ],
)
def test_a_schedule_that_fires_rarely_is_accepted(cron: str) -> None:
    assert parse_definition(scheduled(cron, timezone="Europe/Berlin")).triggers[0].cron == cron


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "x" * 5000, "../../etc/passwd"])
def test_a_time_zone_that_is_not_one_is_rejected_with_its_location(zone: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(scheduled("0 2 * * *", timezone=zone))
    assert [e.location for e in info.value.errors] == ["trigger[0].timezone"]


def chain(n: int, **extra: Any) -> dict[str, Any]:
    return {"name": "x", "steps": [{"name": f"s{i}", "agent": "a"} for i in range(n)], **extra}


def test_a_long_dependency_chain_is_checked_without_recursion() -> None:
    requires = {f"s{i}": (f"s{i - 1}",) if i else () for i in range(5000)}
    assert dependency_cycle(requires) is None
    requires["s0"] = ("s4999",)
    cycle = dependency_cycle(requires)
    assert cycle is not None
    assert (len(cycle), cycle[0], cycle[-1]) == (5001, cycle[-1], cycle[0])


def test_a_cycle_is_named_step_by_step() -> None:
    doc = {
        "name": "x",
        "steps": [
            {"name": "a", "agent": "x", "requires": ["c"]},
            {"name": "b", "agent": "x", "requires": ["a"]},
            {"name": "c", "agent": "x", "requires": ["b"]},
        ],
    }
    with pytest.raises(DefinitionError) as info:
        parse_definition(doc)
    [error] = info.value.errors
    assert error.location == "requires"
    assert error.message.startswith("dependency cycle: ")
    assert set(error.message.removeprefix("dependency cycle: ").split(" -> ")) == {'"a"', '"b"', '"c"'}


def test_a_definition_with_more_steps_than_the_limit_is_rejected() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(chain(MAX_STEPS, parallel=[{"name": "p", "agent": "a"}]))
    [error] = info.value.errors
    assert error.location == "parallel[0]"
    assert f"at most {MAX_STEPS} steps" in error.message


def test_a_5000_step_definition_is_refused_with_the_limit_not_a_crash() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(chain(5000))
    assert [e.location for e in info.value.errors] == [f"steps[{MAX_STEPS}]"]


def test_a_definition_at_the_step_limit_is_accepted() -> None:
    assert len(parse_definition(chain(MAX_STEPS)).steps) == MAX_STEPS


async def test_the_api_refuses_a_definition_over_the_step_limit_with_its_location(
    aiohttp_client: AiohttpClient,
) -> None:
    token = ApiToken(name="ci", token=SecretStr("unit-test-secret-token"), team="team-a", scopes=["read", "write"])
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        api=ApiOptions(tokens=[token]),
    )
    client = await aiohttp_client(create_app(settings, agents=AgentCatalog()))
    doc = {"name": "x", "steps": [{"name": f"s{i}", "action": {"runner": "shell"}} for i in range(MAX_STEPS + 1)]}
    response = await client.post(
        "/api/v1/workflows", json=doc, headers={"Authorization": "Bearer unit-test-secret-token"}
    )
    assert (response.status, response.content_type) == (422, "application/problem+json")
    [error] = (await response.json())["errors"]
    assert error["location"] == f"steps[{MAX_STEPS}]"
