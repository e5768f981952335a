"""`hookline explain` reads an event and answers about it with the code behind
`POST /api/v1/events/explain`: the same events from the same input, the same rows. The stored
definitions come from a stand-in for the store (pure matching, no Kafka)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from click.testing import CliRunner

from gateway.api.events import _events
from gateway.settings import GatewaySettings
from gateway.sources import build_sources
from hookline.cli import cli
from hookline.cli.explain import events_of
from hookline.definitions import StoredDefinition
from schemas.events import Event
from schemas.workflow import parse_definition
from tests.conftest import DATA

FIRING = DATA / "alertmanager-firing.json"
CRITICAL = {
    "name": "Page On Critical",
    "trigger": {
        "type": "webhook",
        "source": "alertmanager",
        "filter": ['severity="critical"'],
        "input": {"who": "${{ labels.job }}"},
    },
}
BY_HAND = {"name": "By Hand"}
CLOUDEVENT = {"specversion": "1.0", "source": "/ci", "type": "com.example.done"}


def stored(doc: dict[str, Any]) -> StoredDefinition:
    definition = parse_definition(doc)
    return StoredDefinition(id=definition.id, version=1, digest="", document=doc, definition=definition)


class Store:
    """Stands in for the definition store on Kafka: what `all()` gives is fixed."""

    definitions: ClassVar[list[StoredDefinition]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def all(self) -> list[StoredDefinition]:
        return self.definitions


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Store]]:
    monkeypatch.setattr("hookline.definitions.DefinitionStore", Store)
    Store.definitions = [stored(CRITICAL), stored(BY_HAND)]
    yield Store
    Store.definitions = []


def answers(output: str) -> list[dict[str, Any]]:
    """The JSON documents `hookline explain` printed, one per event."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while (at := output.find("{", at)) >= 0:
        doc, at = decoder.raw_decode(output, at)
        docs.append(doc)
    return docs


def without_ids(events: list[Event]) -> list[dict[str, Any]]:
    """The events, but for what is new each time they are read (ids given, time of receipt)."""
    return [event.model_dump(mode="json", exclude={"id", "time", "dedupekey"}) for event in events]


def test_a_webhook_body_is_explained_alert_by_alert(store: type[Store]) -> None:
    result = CliRunner().invoke(cli, ["explain", "--source", "alertmanager", str(FIRING)])
    assert result.exit_code == 0, result.output
    docs = answers(result.output)
    assert len(docs) == len(json.loads(FIRING.read_text())["alerts"])
    first = docs[0]
    assert first["type"] == "io.prometheus.alertmanager.alert.firing"
    rows = {row["definition"]: row for row in first["definitions"]}
    assert rows["page-on-critical"]["matches"] is True
    assert rows["page-on-critical"]["input"] == {"who": "checkout"}
    assert rows["page-on-critical"]["workflow_id"].startswith("page-on-critical:event:alertmanager/")
    assert rows["by-hand"] == {
        "definition": "by-hand",
        "version": 1,
        "matches": False,
        "reason": "manual trigger",
        "workflow_id": None,
        "on_resolved": None,
        "input": None,
        "flow_control": None,
    }


def test_a_cloudevent_gets_an_id_and_is_explained(store: type[Store], tmp_path: Path) -> None:
    file = tmp_path / "event.json"
    file.write_text(json.dumps(CLOUDEVENT))
    result = CliRunner().invoke(cli, ["explain", str(file)])
    assert result.exit_code == 0, result.output
    [doc] = answers(result.output)
    assert doc["type"] == "com.example.done" and doc["event"]
    assert {row["definition"] for row in doc["definitions"]} == {"page-on-critical", "by-hand"}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("[1, 2]", "not a CloudEvent as JSON"),
        ("{", "not a CloudEvent as JSON"),
        ('{"type": "x"}', "not a CloudEvent as JSON"),
    ],
)
def test_what_is_not_a_cloudevent_is_refused_with_a_hint(body: str, complaint: str, tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text(body)
    result = CliRunner().invoke(cli, ["explain", str(file)])
    assert result.exit_code == 1
    assert complaint in result.output and "pass --source" in result.output


def test_an_unknown_source_lists_the_configured_ones() -> None:
    result = CliRunner().invoke(cli, ["explain", "--source", "nosuch", str(FIRING)])
    assert result.exit_code == 1
    assert "no source named 'nosuch' is configured; known: alertmanager" in result.output


def test_a_body_the_source_refuses_says_why(tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text('{"alerts": "none"}')
    result = CliRunner().invoke(cli, ["explain", "--source", "alertmanager", str(file)])
    assert result.exit_code == 1
    assert "not an Alertmanager v4 notification" in result.output


def test_the_command_reads_a_webhook_body_as_the_api_does() -> None:
    settings = GatewaySettings()
    body = FIRING.read_bytes()
    api = _events({"source": "alertmanager", "body": orjson.loads(body)}, build_sources(settings.gateway.sources))
    cli_events = events_of(body, "alertmanager", settings)
    assert without_ids(cli_events) == without_ids(api)
    assert [e.dedupekey for e in cli_events] == [e.dedupekey for e in api]


def test_the_command_reads_a_cloudevent_as_the_api_does() -> None:
    settings = GatewaySettings()
    [api] = _events({"event": CLOUDEVENT}, {})
    [cli_event] = events_of(orjson.dumps(CLOUDEVENT), None, settings)
    assert without_ids([cli_event]) == without_ids([api])
    assert (cli_event.dedupekey, api.dedupekey) == (cli_event.id, api.id)
