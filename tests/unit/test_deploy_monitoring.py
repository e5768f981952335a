"""deploy/: the Prometheus alerting rules pass promtool (and their own unit tests, which can
fail), the Grafana dashboard is valid and its queries parse, and every metric either names is
one the components expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.api.lanes import LaneGauges
from gateway.metrics import GatewayMetrics
from gateway.temporal_metrics import PoolCollector, PoolLoad, RunCollector
from triggers.metrics import ConsumerLag, DlqSize, TickerUp, TriggersMetrics
from worker.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "hookline-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "hookline-rules.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hookline.json"
METRIC = re.compile(r"\bhookline_[a-z0-9_]+")
#: The sample names a family of each type exposes, besides its own name.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


@pytest.fixture(scope="module")
def promtool() -> str:
    """Debian's `prometheus` package ships it (`make install` installs it): no skipping."""
    path = shutil.which("promtool")
    assert path is not None, "promtool is missing: apt-get install prometheus"
    return path


def run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def test_rules_pass_promtool_check(promtool: str) -> None:
    checked = run(promtool, "check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_fire_on_their_unit_tests_series_and_only_there(promtool: str) -> None:
    tested = run(promtool, "test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rule_unit_tests_fail_when_an_alert_does_not_fire(promtool: str, tmp_path: Path) -> None:
    """The rules' unit tests can fail: with the no-pollers alert broken, they do."""
    rules = RULES.read_text()
    broken = rules.replace("(hookline_pool_pollers) == 0", "(hookline_pool_pollers) < 0")
    assert broken != rules
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    tested = run(promtool, "test", "rules", tmp_path / RULE_TESTS.name)
    assert tested.returncode != 0
    assert "HooklinePoolWithoutPollers" in tested.stdout + tested.stderr


def test_the_rules_cover_what_operations_needs() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert alerts == {
        "HooklineComponentDown",
        "HooklineConsumerLagGrowing",
        "HooklineDlqGrowing",
        "HooklineGatewayUnavailable",
        "HooklinePoolWithoutPollers",
        "HooklineTickerDead",
    }


def test_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] == "hookline"
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool has no offline query check; the queries are checked as recording rules."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run(promtool, "check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exposed(registries: list[CollectorRegistry]) -> set[str]:
    """Every sample name the registries expose (a labelled family without children too)."""
    names = set()
    for registry in registries:
        for family in registry.collect():
            names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


async def read(value: object) -> Any:
    return value


async def no_problem() -> str | None:
    return None


async def component_registries() -> list[CollectorRegistry]:
    """Each component's registry, its scraped collectors registered on fixed reads."""
    gateway, triggers, worker = GatewayMetrics().registry, TriggersMetrics().registry, WorkerMetrics().registry
    gateway.register(PoolCollector(lambda: read({"shell": PoolLoad(backlog=2, backlog_age_s=1.5, pollers=1)})))
    gateway.register(RunCollector(lambda: read({("incident", "running"): 1})))
    gateway.register(LaneGauges(lambda: read({"incident": (2, Counter(running=1, queued=3))})))
    triggers.register(ConsumerLag(lambda: read({("hl.events", 0): 3})))
    triggers.register(DlqSize(lambda: read(4)))
    triggers.register(TickerUp(no_problem))
    for registry in (gateway, triggers, worker):
        await registry.refresh()
    return [gateway, triggers, worker]


async def test_every_metric_the_dashboard_and_the_rules_name_is_exposed() -> None:
    names = exposed(await component_registries())
    for source, expressions in (("dashboard", dashboard_expressions()), ("rules", rule_expressions())):
        referenced = {name for expr in expressions for name in METRIC.findall(expr)}
        assert referenced, source
        assert referenced <= names, f"{source} names metrics nothing exposes: {sorted(referenced - names)}"


def test_the_dashboard_shows_the_metrics_of_the_issue() -> None:
    referenced = {name for expr in dashboard_expressions() for name in METRIC.findall(expr)}
    assert {
        "hookline_triggers_consumer_lag",
        "hookline_pool_backlog",
        "hookline_pool_pollers",
        "hookline_runs",
        "hookline_worker_step_duration_seconds_bucket",
        "hookline_worker_step_duration_seconds_count",
        "hookline_dlq_records",
        "hookline_gateway_unavailable_total",
        "hookline_triggers_ticker_up",
    } <= referenced
