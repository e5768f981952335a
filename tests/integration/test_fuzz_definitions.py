"""Fuzzing workflow definitions through the REST API of a real gateway process (real Kafka and
Temporal):
definitions built from the JSON Schema's shape with hostile parts go to `POST /workflows/validate`
and then `POST /workflows`. Each answer is 2xx or 4xx, never 5xx; what validate calls valid is
saved (or already exists) and what it calls invalid is refused; a sample of the saved ones reads
back unchanged.

The definitions are made as `fuzzing` describes (derandomized: the same ones on every run of one
Hypothesis version), while the gateways start; then sent `CONCURRENCY` at a time.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import io
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from tests.conftest import EXAMPLES
from tests.eventually import eventually
from tests.integration.fuzz_requests import BIG_TEXTS, NASTY_STRINGS
from tests.integration.fuzzing import (
    Deep,
    Draw,
    Gen,
    Obj,
    Raw,
    dicts,
    dump,
    fixed_dicts,
    generate,
    integers,
    just,
    leaf,
    lists,
    one_of,
    optional_dicts,
    pick,
    rarely,
    recursive,
    weighted,
)
from tests.integration.test_api_support import API, TOKENS, auth
from tests.integration.test_fuzz_ingress import Process, spawn, stop, wait_ready

DEFINITIONS_WANTED = 2_000
#: Definitions on their way at once (each a validate, then a create), over the replicas.
CONCURRENCY = 24
REPLICAS = 4
#: Replaced by the test's topic prefix: kafka triggers naming Hookline's own topics.
PREFIX = "@PREFIX@"

SHORT: Gen[str] = leaf("texts")
ODD = pick([*NASTY_STRINGS, *BIG_TEXTS[:3]])
NAMES = weighted(
    (6, pick(["Deploy", "Build", "Incident Response", "Nightly Report", "Sync Orders"])),
    (2, SHORT),
    (1, ODD),
    (1, pick(["", "x" * 200, "x" * 201, 7, None, ["a"], {"a": 1}])),
)
#: Anything a careless author puts where a value of another type belongs.
WRONG = one_of(
    just(None),
    pick([True, False]),
    leaf("integers"),
    leaf("floats"),
    SHORT,
    pick([[], {}, [None], {"": None}, 2**64, -(2**63)]),
)
DURATIONS = weighted(
    (6, pick([30, 0.5, "500ms", "30s", "5m", "1h30m", "2d", "1.5h"])),
    (
        4,
        pick(
            [0, -1, "0s", "", "5 minutes", "1e3s", "30", "1h 30m", 1e308, "9" * 30 + "d", "99999999999999999999d", True]
        ),
    ),
    (1, WRONG),
)
CRONS = pick(
    [
        "*/5 * * * *",
        "0 2 * * *",
        "*/10 * * * * *",
        "0 0 29 2 *",
        "0 0 30 2 *",
        "0 0 31 4 *",
        "61 * * * *",
        "*/0 * * * *",
        "1-0 * * * *",
        "* * * * * * *",
        "@hourly",
        "0 0 L * *",
        "",
        "x",
        "0 0 * * 8",
        "0 0 1 1 * 2099",
    ]
)
TIMEZONES = pick(["UTC", "Europe/Berlin", "America/St_Johns", "Mars/Olympus", "../../etc/passwd", "", "utc"])
REGEXES = ["(a+)+", "checkout|payments", ".*", "[", "(?=x)", "(?<=a)b", "a{1000000}", "\\", "é+"]
MATCHERS = one_of(
    lambda draw: (
        draw.pick(["severity", "labels.team", "type", "data.a.b"])
        + draw.pick(["=", "!=", "=~", "!~"])
        + f'"{draw.pick(REGEXES)}"'
    ),
    pick(['severity="critical"', "env!=dev", "=~x", "", "severity", '"unterminated', "a==b", "1x=1"]),
    SHORT,
)
EXPRESSIONS = pick(
    [
        "length(data.alerts || `[]`) > `0`",
        "event.data.x",
        "input.env == 'prod'",
        "steps.build.output",
        "[[[",
        "foo(",
        "`{`",
        "${{ input.x }}",
        "${{ }}",
        "@" + ".a" * 500,
        "[@, @][][@, @][][@, @][][@, @][][@, @][][@, @][][@, @][][@, @][][@, @][][@, @][][@, @][][@, @][]",
        "length(@) " * 50,
        "",
        "a" * 10_000,
    ]
)
FILTERS = weighted(
    (3, lists(MATCHERS, max_size=3)),
    (
        4,
        optional_dicts(
            {
                "match": one_of(MATCHERS, lists(MATCHERS, max_size=2)),
                "any": lists(MATCHERS, max_size=2),
                "expression": EXPRESSIONS,
            }
        ),
    ),
    (1, WRONG),
)
TEMPLATES = pick(
    [
        "${{ labels.service }}",
        "${{ annotations.summary }}",
        "plain",
        "${{ [[[ }}",
        "${{",
        "}}",
        "${{ event }}${{ input }}",
    ]
)
JSON_VALUES = recursive(
    one_of(just(None), pick([True, False]), leaf("integers"), leaf("floats"), SHORT, TEMPLATES), SHORT
)
TOPICS = pick(
    [
        "orders",
        "orders.v1",
        f"{PREFIX}.events",
        f"{PREFIX}.events.dlq",
        f"{PREFIX}.workflows",
        f"{PREFIX}.schedules",
        "__consumer_offsets",
        "__transaction_state",
        "_schemas",
        "",
        "a/b",
        "x" * 250,
    ]
)


TRIGGER_KINDS = ["webhook", "schedule", "webhook", "schedule", "kafka", "manual", "cron", None]
SOURCES = weighted((4, pick(["alertmanager", "github", "events"])), (1, SHORT), (1, WRONG))
SOME_CRON = rarely(WRONG, CRONS)
SCHEDULE_OPTIONS = (
    ("timezone", TIMEZONES),
    ("jitter", DURATIONS),
    ("missed", pick(["skip", "once", "all", "some"])),
    ("max_missed", pick([1, 10, 0, -1, 10**12])),
)
SOME_TOPIC = rarely(WRONG, TOPICS)
TRIGGER_INPUTS = rarely(WRONG, dicts(SHORT, TEMPLATES, max_size=3))
ON_RESOLVED = pick(["signal", "cancel", "ignore", "start", "explode"])


def trigger(draw: Draw) -> Any:
    kind = draw.pick(TRIGGER_KINDS)
    made: dict[str, Any] = {"type": kind} if kind is not None else {}
    if kind == "webhook" or draw.one_in(10):
        made["source"] = draw(SOURCES)
    if kind == "schedule" or draw.one_in(10):
        if not draw.one_in(6):
            made["cron"] = draw(SOME_CRON)
        for key, gen in SCHEDULE_OPTIONS:
            if draw.one_in(4):
                made[key] = draw(gen)
    if kind == "kafka" or draw.one_in(10):
        made["topic"] = draw(SOME_TOPIC)
    if draw.one_in(3):
        made["filter"] = draw(FILTERS)
    if draw.one_in(4):
        made["input"] = draw(TRIGGER_INPUTS)
    if draw.one_in(6):
        made["on_resolved"] = draw(ON_RESOLVED)
    if draw.one_in(15):
        made[draw(SHORT)] = draw(WRONG)
    return made


SECRET_NAMES = pick(["DB_PASSWORD", "api.token-2", "_X", "", "1BAD", "a b", "x" * 101, "$(id)", "../etc"])
GOOD_SECRETS = fixed_dicts({"secret": pick(["DB_PASSWORD", "api.token-2", "_X"])})
SECRETS = one_of(
    fixed_dicts({"secret": SECRET_NAMES}),
    pick([{"secret": 5}, {"secret": None}, {"secret": {"secret": "X"}}, {"secret": "A", "extra": 1}, {}]),
)
RUNNERS = pick(["shell", "http", "container", "kubernetes", "ssh", "sandbox", "nope", ""])


SOME_RUNNER = rarely(WRONG, RUNNERS)
COMMANDS = rarely(WRONG, lists(pick(["echo", "${{ input.x }}", "", "a" * 1000]), max_size=3))
ENVS = dicts(SHORT, weighted((6, SHORT), (3, GOOD_SECRETS), (1, SECRETS), (1, WRONG)), max_size=3)
OPTIONS = one_of(
    fixed_dicts({"headers": dicts(SHORT, one_of(SHORT, SECRETS), max_size=2)}),
    optional_dicts(
        {
            "network": pick(["none", "host", "bridge"]),
            "cap_add": just(["SYS_ADMIN"]),
            "namespace": SHORT,
            "url": pick(["http://169.254.169.254/", "file:///etc/passwd", "https://example.com"]),
            "token": SECRETS,
        }
    ),
    WRONG,
)
POOLS = rarely(WRONG, SHORT)


def action(draw: Draw) -> Any:
    made: dict[str, Any] = {"runner": draw(SOME_RUNNER)}
    if draw.one_in(2):
        made["command"] = draw(COMMANDS)
    if draw.one_in(2):
        made["env"] = draw(ENVS)
    if draw.one_in(3):
        made["options"] = draw(OPTIONS)
    if draw.one_in(10):
        made["pool"] = draw(POOLS)
    return made


AGENTS = weighted(
    (6, pick(["analyzer", "notifier", "builder", "deployer", "test-agent-uuid"])),
    (2, pick(["nope", "ANALYZER", "analyzer ", ""])),
    (1, WRONG),
)
RETRIES = one_of(
    pick([1, 3, 0, -1, 10**9]),
    optional_dicts(
        {
            "max_attempts": pick([1, 5, 0]),
            "initial_interval": DURATIONS,
            "backoff_coefficient": pick([1, 2.5, 0.5, 1e308]),
            "max_interval": DURATIONS,
            "non_retryable_errors": lists(SHORT, max_size=2),
        }
    ),
    WRONG,
)


STEP_KINDS = ["agent"] * 4 + ["agent_id", "agent_id", "action", "action", "two", "none"]
API_TYPE = rarely(WRONG, just("agent"))
PICKS = lists(integers(0, 10**6), max_size=3)
STEP_OPTIONS = (
    ("with", dicts(SHORT, JSON_VALUES, max_size=3), 3),
    ("when", EXPRESSIONS, 4),
    ("timeout", DURATIONS, 4),
    ("retries", RETRIES, 5),
    ("continue_on_error", one_of(pick([True, False]), WRONG), 8),
    ("description", one_of(SHORT, ODD), 8),
)


def step(draw: Draw, names: list[str], index: int) -> Any:
    """Step `index`; `names` are the step names of the definition, for `requires`."""
    made: dict[str, Any] = {"name": draw(NAMES) if draw.one_in(15) else names[index]}
    how = draw.pick(STEP_KINDS)
    if how in ("agent", "two"):
        made["agent"] = draw(AGENTS)
    if how == "agent_id":
        made.update({"type": draw(API_TYPE), "agent_id": draw(AGENTS)})
    if how in ("action", "two"):
        made["action"] = action(draw)
    if draw.one_in(3):
        made["requires"] = [names[i % len(names)] for i in draw(PICKS)] + ([draw(SHORT)] if draw.one_in(10) else [])
        if draw.one_in(15):
            made["requires"] = draw(WRONG)
    for key, gen, every in STEP_OPTIONS:
        if draw.one_in(every):
            made[key] = draw(gen)
    if draw.one_in(8):
        compensation: dict[str, Any] = {}
        if draw.one_in(2):
            compensation["agent"] = draw(AGENTS)
        if draw.one_in(3):
            compensation["action"] = action(draw)
        made["on_failure"] = compensation
    if draw.one_in(20):
        made[draw(SHORT)] = draw(WRONG)
    return made


def deep(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"type": "object", "properties": {"a": leaf}}
    return leaf


INPUTS = one_of(
    pick(
        [
            {"type": "object", "required": ["env"], "properties": {"env": {"enum": ["prod", "staging"]}}},
            {"type": "object", "properties": {"v": {"type": "string", "pattern": "^v[0-9]+$"}}},
            {"properties": {"v": {"pattern": "(a+)+$"}}},
            {"properties": {"v": {"pattern": "(?<=a)b"}}},
            {"properties": {"v": {"pattern": "["}}},
            {"$ref": "#"},
            {"$ref": "#/$defs/missing"},
            {"$ref": "https://example.com/schema.json"},
            {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
            {"properties": {"a": {"$ref": "#/properties/a"}}},
            {"type": "objekt"},
            {"type": "object", "additionalProperties": False, "minProperties": 10**20},
            {"format": "email", "patternProperties": {"(": {}}},
            deep(30, {"type": "string"}),
            deep(70, {"type": "string"}),
            {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
        ]
    ),
    dicts(SHORT, JSON_VALUES, max_size=3),
    WRONG,
)
#: Mostly a few steps; now and then at the limit of 200 steps or far over it. A long list is
#: what the gateway spends most on (~0.2 s of CPU to explain an invalid one, step by step, at
#: each of validate and create), so one definition in 50 has one: ~40 of the 2,000.
STEP_COUNTS = weighted((49, pick([3, 1, 2, 3, 5, 8, 1, 0])), (1, pick([199, 200, 201, 400])))
PLACES = ["steps", "steps", "steps", "parallel", "both", "none"]
SOME_TRIGGERS = weighted((3, trigger), (2, lists(trigger, min_size=1, max_size=3)), (1, WRONG))
DEFINITION_OPTIONS = (
    ("inputs", INPUTS, 4),
    ("timeout", DURATIONS, 5),
    ("description", one_of(SHORT, ODD, just("d" * 200_000)), 5),
    ("id", pick(["my-flow", "UPPER", "-x", "a" * 128, "a" * 129, "ok.id_1", "team-b~x", "~", ""]), 12),
    ("team_id", pick(["team-a", "team-b", "", "team a", "*", "default"]), 10),
)
HUGE = "d" * 2**20
_numbers = itertools.count()
TOKEN_NAMES = ["a"] * 6 + ["ops", "b"]


def definition(draw: Draw) -> Any:
    name = draw(NAMES)
    if isinstance(name, str) and not draw.one_in(6):
        name = f"{name} {next(_numbers)}"  # mostly distinct: most valid ones are saved, not refused as existing
    count = draw(STEP_COUNTS)
    names = [f"step {i}" for i in range(max(count, 1))]
    drawn = [step(draw, names, i) for i in range(min(count, 4))]
    # A long list costs no more than a short one: the drawn steps again, under their own names.
    listed = (
        [{**drawn[i % len(drawn)], "name": names[i]} if i >= len(drawn) else drawn[i] for i in range(count)]
        if drawn
        else []
    )
    doc: dict[str, Any] = {"name": name}
    where = draw.pick(PLACES)
    if where in ("steps", "both"):
        doc["steps"] = listed
    if where in ("parallel", "both"):
        doc["parallel"] = listed[::-1] if where == "both" else listed
    if where == "steps" and count > 2 and draw.one_in(4):  # a cycle through requires
        listed[0] = {**listed[0], "requires": [names[count - 1]]}
        listed[count - 1] = {**listed[count - 1], "requires": [names[0]]}
    if draw.one_in(2):
        doc["trigger"] = draw(SOME_TRIGGERS)
    for key, gen, every in DEFINITION_OPTIONS:
        if draw.one_in(every):
            doc[key] = draw(gen)
    if draw.one_in(20):
        doc[draw(SHORT)] = draw(WRONG)
    if draw.one_in(30):  # the API body itself, hostile: deep, duplicated keys, NaN, over the API's 1 MiB
        return draw.pick(
            [
                Obj([("name", "first"), *doc.items(), ("name", "again")]),
                {**doc, "description": Deep(70, 1)},
                {**doc, "timeout": Raw("NaN")},
                [doc],
                Raw('"\\ud800"'),
                {**doc, "description": HUGE},
            ]
        )
    return doc


def authored(draw: Draw) -> tuple[Any, str]:
    """A definition and the name of the token that sends it."""
    return definition(draw), draw.pick(TOKEN_NAMES)


def readback_equal(sent: dict[str, Any], stored: dict[str, Any]) -> bool:
    """What was sent reads back unchanged (the API adds the id, and the team of the token)."""
    return all(stored.get(k) == v for k, v in sent.items() if k not in ("id", "team_id"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client:
        yield client


@pytest.fixture
def api_processes(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, tmp_path: Path
) -> Iterator[list[Process]]:
    """Gateway processes (replicas, as behind a load balancer) with the API tokens of
    `test_api_support`. Processes, not the in-process test client: checking definitions is most
    of this test's CPU, and processes spread it over the cores. Several, because each writes one
    definition at a time (compare-and-set on the topic)."""
    processes: list[Process] = []
    try:
        for n in range(REPLICAS):
            port = free_port()
            config = {
                "kafka": kafka_settings.model_dump(mode="json"),
                "temporal": temporal_settings.model_dump(mode="json"),
                "log": {"format": "json", "level": "warning"},
                "agents_file": str(EXAMPLES / "agents.yaml"),
                "gateway": {"port": port, "instance_id": f"fuzz-{n}"},
                "api": {
                    "tokens": [
                        {**t.model_dump(mode="json"), "token": t.token.get_secret_value()} for t in TOKENS.values()
                    ]
                },
            }
            path = tmp_path / f"gateway-{n}.yaml"
            path.write_text(yaml.safe_dump(config))
            log = tmp_path / f"gateway-{n}.log"
            popen = spawn(f"gateway-{n}", ["gateway", "--config", str(path)], {}, log)
            processes.append(Process(f"gateway-{n}", popen, f"http://127.0.0.1:{port}", log))
        yield processes
    finally:
        for process in processes:
            stop(process.popen)


async def api_ready(session: aiohttp.ClientSession, process: Process) -> bool:
    """Whether the API answers; it answers 503 until it has read the definitions topic."""
    async with session.get(f"{process.base}{API}/workflows", headers=auth("ops")) as answer:
        return answer.status == 200


# ~30 s on a quiet 2-core machine; room for a busy one beyond the suite's 120 s.
@pytest.mark.long
@pytest.mark.timeout(300)
async def test_fuzzed_definitions_get_2xx_or_4xx_and_validate_agrees_with_save(
    api_processes: list[Process], session: aiohttp.ClientSession, kafka_settings: KafkaSettings
) -> None:
    made = generate(authored, DEFINITIONS_WANTED)  # ~3 s, while the gateways start
    for process in api_processes:
        await wait_ready(session, process)
        await eventually(functools.partial(api_ready, session, process), f"{process.name}'s API", timeout=30)
    replicas = itertools.cycle(api_processes)
    prefix = kafka_settings.topic_prefix
    statuses: collections.Counter[str] = collections.Counter()
    saved: list[tuple[str, dict[str, Any]]] = []
    started = time.monotonic()

    async def post(base: str, path: str, body: bytes, token: str) -> tuple[int, Any]:
        async with session.post(
            f"{base}{API}{path}",
            data=io.BytesIO(body) if len(body) > 2**20 else body,  # over the API's limit: 413
            headers={**auth(token), "Content-Type": "application/json"},
        ) as answer:
            text = await answer.read()
            try:
                return answer.status, orjson.loads(text)
            except orjson.JSONDecodeError:
                return answer.status, text

    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(doc: Any, token: str) -> list[str]:
        """Validate, then save; the problems found (none: as it should be)."""
        body = dump(doc).replace(PREFIX, prefix).encode("utf-8", "surrogatepass")
        problems = []
        base = next(replicas).base
        async with limit:
            validated, verdict = await post(base, "/workflows/validate", body, token)
            created, answer = await post(base, "/workflows", body, token)
        statuses[f"validate {validated}"] += 1
        statuses[f"create {created}"] += 1
        for what, status in (("validate", validated), ("create", created)):
            if not (200 <= status < 300 or 400 <= status < 500):
                problems.append(f"{what} answered {status}")
        if validated == 200 and verdict["valid"] and created not in (201, 409):
            problems.append(f"validate said valid, create answered {created}: {str(answer)[:500]}")
        if validated == 200 and not verdict["valid"] and created in (201, 409):
            problems.append(f"validate said invalid ({verdict['errors'][:3]}), create answered {created}")
        if created == 201 and isinstance(doc, dict):
            saved.append((answer["id"], orjson.loads(body)))
        return [f"{p}\n  token {token}, body {body[:600]!r}" for p in problems]

    found = await asyncio.gather(*(one(doc, token) for doc, token in made))
    problems = [p for problems in found for p in problems]
    assert not problems, f"{len(problems)} problems, the first:\n" + "\n".join(problems[:20])
    total = statuses["validate 200"] + sum(v for k, v in statuses.items() if k.startswith("validate 4"))
    print(f"\n{total} definitions in {time.monotonic() - started:.1f}s: {sorted(statuses.items())}")
    assert total >= DEFINITIONS_WANTED
    assert statuses["create 201"] >= DEFINITIONS_WANTED // 20, "too few definitions were valid to test saving"
    assert statuses["create 422"] >= DEFINITIONS_WANTED // 10, "too few definitions were invalid"

    for definition_id, doc in saved[:: max(1, len(saved) // 100)]:
        base = next(replicas).base  # written through one replica, read through another
        async with session.get(f"{base}{API}/workflows/{definition_id}", headers=auth("ops")) as answer:
            assert answer.status == 200, (definition_id, await answer.text())
            stored = (await answer.json())["definition"]
        assert readback_equal(doc, stored), (definition_id, doc, stored)
