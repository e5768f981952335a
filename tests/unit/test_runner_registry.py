"""The registry of runner kinds: built-ins, `hookline.runners` entry points, and the failures
that must stop a worker at start-up."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from schemas.agents import Agent, AgentCatalog
from worker.app import build_runners, served_pools
from worker.runners import RegistryError, Runner, RunnerContext, RunnerRegistry
from worker.runners.shell import ShellRunner
from worker.settings import WorkerOptions, WorkerSettings

BUILT_IN = ["container", "http", "kubernetes", "sandbox", "shell", "ssh"]


def plugin_factory(context: RunnerContext) -> Runner[Any]:
    """Stands in for a third-party runner's entry point."""
    return ShellRunner.create(context)


NOT_A_FACTORY = "just a string"


def entry_point(name: str, attr: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{attr}", group="hookline.runners")


def test_the_built_in_kinds_are_registered() -> None:
    assert RunnerRegistry.discover(plugins=[]).names == BUILT_IN


def test_an_entry_point_adds_a_kind() -> None:
    registry = RunnerRegistry.discover(plugins=[entry_point("mine", "plugin_factory")])
    assert "mine" in registry.names
    assert isinstance(registry.create("mine", RunnerContext()), ShellRunner)


def test_a_plugin_may_not_take_a_built_in_name() -> None:
    with pytest.raises(RegistryError, match="'shell' is registered twice: built-in and"):
        RunnerRegistry.discover(plugins=[entry_point("shell", "plugin_factory")])


def test_two_plugins_may_not_share_a_name() -> None:
    with pytest.raises(RegistryError, match="registered twice"):
        RunnerRegistry.discover(plugins=[entry_point("mine", "plugin_factory"), entry_point("mine", "plugin_factory")])


def test_a_plugin_that_cannot_be_imported_is_named() -> None:
    broken = EntryPoint(name="broken", value="no_such_module_here:create", group="hookline.runners")
    with pytest.raises(RegistryError, match=r"runner 'broken' \(no_such_module_here:create\) cannot be loaded"):
        RunnerRegistry.discover(plugins=[broken])


def test_a_plugin_must_point_at_a_factory() -> None:
    with pytest.raises(RegistryError, match="is not a factory"):
        RunnerRegistry.discover(plugins=[entry_point("odd", "NOT_A_FACTORY")])


def test_an_unknown_kind_lists_what_is_available() -> None:
    with pytest.raises(RegistryError, match="unknown runner 'shel'; available: container, http"):
        RunnerRegistry.discover(plugins=[]).create("shel", RunnerContext())


def test_worker_settings_refuse_an_unknown_runner_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown runner"):
        WorkerOptions(runners=["shell", "nosuch"])


def test_settings_for_a_kind_nobody_registered_are_refused() -> None:
    settings = WorkerSettings(worker=WorkerOptions(runner_settings={"htp": {"allow": []}}))
    with pytest.raises(RegistryError, match="runner_settings names unknown runner"):
        build_runners(settings, RunnerRegistry.discover(plugins=[]))


def test_runner_settings_are_validated_by_their_runner() -> None:
    settings = WorkerSettings(worker=WorkerOptions(runners=["http"], runner_settings={"http": {"allow": ["nonsense"]}}))
    with pytest.raises(ValueError, match=r"worker\.runner_settings\.http: allow\.0"):
        build_runners(settings, RunnerRegistry.discover(plugins=[]))


def test_a_worker_builds_only_the_kinds_it_serves() -> None:
    settings = WorkerSettings(worker=WorkerOptions(runners=["shell", "http"]))
    assert sorted(build_runners(settings, RunnerRegistry.discover(plugins=[]))) == ["http", "shell"]


def test_a_worker_serves_its_kinds_pools_and_every_pool_their_agents_name() -> None:
    agents = AgentCatalog(
        agents={
            "a": Agent(name="a", runner="shell", pool="gpu"),
            "b": Agent(name="b", runner="http"),
            "c": Agent(name="c", runner="ssh", pool="edge"),
        }
    )
    assert served_pools(agents, ["shell", "http"]) == ["gpu", "http", "shell"]


def test_hookline_worker_stops_at_once_on_an_unknown_runner() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "worker", "--runner", "nosuch"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOOKLINE_TEMPORAL__ADDRESS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "unknown runner(s) nosuch; available: container, http, kubernetes, sandbox, shell, ssh" in done.stderr
