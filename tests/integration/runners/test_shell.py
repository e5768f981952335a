"""The shell runner on real processes: event data never becomes part of a command line, the
working directory and environment are what the agent says, a timeout kills the whole process
group, and exit codes map to typed errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from temporalio.exceptions import ApplicationError

from gateway.sources.alertmanager import AlertmanagerSource
from schemas.agents import Agent, AgentCatalog
from schemas.run import StepRequest
from tests.conftest import DATA
from tests.integration.runners.harness import Harness, cleanup_sleepers, sleep_token, sleeping, wait_until
from worker.app import build_runners
from worker.settings import WorkerOptions, WorkerSettings

HOSTILE_LABELS = ["; id", "$(id)", "`id`", "--help", "x' || id #", '"; touch pwned; "']


@pytest.fixture
def trap(tmp_path: Path) -> Path:
    """A PATH folder whose `id` and `touch` leave a mark if anything ever runs them."""
    bin_dir = tmp_path / "trap-bin"
    bin_dir.mkdir()
    for name in ("id", "touch"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\necho ran >> {tmp_path / 'RAN'}\n")
        script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("label", HOSTILE_LABELS)
async def test_alert_labels_reach_the_step_as_data_and_nothing_extra_runs(
    shell_harness: Harness, tmp_path: Path, trap: Path, label: str
) -> None:
    body = json.loads((DATA / "alertmanager-firing.json").read_text())
    body["alerts"][0]["labels"]["alertname"] = label
    event = AlertmanagerSource("alertmanager").parse(orjson.dumps(body), {"Content-Type": "application/json"})[0]
    # A careless agent: it reads the label and hands it to other programs, but only as argv items.
    script = (
        "import json, subprocess, sys; ctx = json.load(sys.stdin); "
        "label = ctx['event']['data']['alert']['labels']['alertname']; "
        "subprocess.run(['printf', '%s\\n', label], check=True); print(json.dumps(sys.argv[1:]))"
    )
    agent = Agent(
        name="careless",
        command=("python3", "-c", script, "fixed"),
        workdir=tmp_path,
        env={"PATH": f"{trap}:/usr/bin:/bin"},
    )
    request = StepRequest(workflow_id="w", step="s", agent="careless", event=event, input={"label": label})
    result = await shell_harness.environment().run(shell_harness.activities(agent).run_step, request)
    printed_label, argv = result.output.splitlines()
    assert (printed_label, json.loads(argv)) == (label, ["fixed"])
    assert not (tmp_path / "RAN").exists()
    assert not (tmp_path / "pwned").exists()


async def test_a_step_runs_in_its_agents_working_directory(shell_harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents.yaml").write_text("agents:\n  here:\n    command: [pwd]\n    workdir: agents\n")
    agent = AgentCatalog.load(tmp_path / "agents.yaml").agents["here"]
    result = await shell_harness.run(agent)
    assert result.output.strip() == str(tmp_path / "agents")


async def test_a_missing_working_directory_is_a_configuration_error(shell_harness: Harness, tmp_path: Path) -> None:
    agent = Agent(name="nowhere", command=("true",), workdir=tmp_path / "missing")
    with pytest.raises(ApplicationError) as failed:
        await shell_harness.run(agent)
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)
    assert (
        failed.value.message
        == f"cannot enter working directory {str(tmp_path / 'missing')!r}: No such file or directory"
    )


async def test_a_working_directory_that_is_a_file_is_a_configuration_error(
    shell_harness: Harness, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    agent = Agent(name="nowhere", command=("true",), workdir=tmp_path / "file")
    with pytest.raises(ApplicationError) as failed:
        await shell_harness.run(agent)
    assert failed.value.message == f"cannot enter working directory {str(tmp_path / 'file')!r}: Not a directory"


async def test_a_missing_program_is_a_configuration_error_naming_it(shell_harness: Harness, tmp_path: Path) -> None:
    agent = Agent(name="typo", command=("no-such-program-hookline", "--flag"), workdir=tmp_path)
    with pytest.raises(ApplicationError) as failed:
        await shell_harness.run(agent)
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)
    assert failed.value.message == "cannot run 'no-such-program-hookline': No such file or directory"


async def test_only_allow_listed_worker_variables_and_the_agents_own_reach_the_step(tmp_path: Path) -> None:
    settings = WorkerSettings(worker=WorkerOptions(inherit_env=["PATH", "LANG"]))
    environ = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "HOME": "/root"}
    runner = build_runners(settings, environ=environ)["shell"]
    agent = Agent(name="env", command=("env",), workdir=tmp_path, env={"LANG": "de_DE.UTF-8", "TARGET": "prod"})
    harness = Harness("shell", runner, lambda b, t: agent, lambda t: _false())
    lines = set((await harness.run(agent)).output.splitlines())
    assert {
        "PATH=/usr/bin:/bin",
        "LANG=de_DE.UTF-8",
        "TARGET=prod",
        "HOOKLINE_AGENT=env",
        "HOOKLINE_STEP=contract",
    } <= lines
    assert not any(line.startswith(("AWS_SECRET_ACCESS_KEY=", "HOME=")) for line in lines)


@pytest.fixture
def tokens() -> Iterator[tuple[str, str]]:
    pair = (sleep_token(), sleep_token())
    yield pair
    for token in pair:
        cleanup_sleepers(token)


async def test_a_timeout_kills_the_whole_process_group(
    shell_harness: Harness, tmp_path: Path, tokens: tuple[str, str]
) -> None:
    background, foreground = tokens
    agent = Agent(
        name="forks", command=("sh", "-c", f"sleep {background} & sleep {foreground}"), workdir=tmp_path, timeout_s=1
    )
    with pytest.raises(ApplicationError) as failed:
        await shell_harness.run(agent)
    assert failed.value.type == "Timeout"
    assert await wait_until(lambda: _none_sleeping(*tokens), 10)


async def test_stderr_is_captured_with_stdout(shell_harness: Harness, tmp_path: Path) -> None:
    agent = Agent(name="both", command=("sh", "-c", "echo out; echo err >&2"), workdir=tmp_path)
    assert (await shell_harness.run(agent)).output.split() == ["out", "err"]


@pytest.mark.parametrize(
    ("command", "options", "kind", "retryable", "message"),
    [
        (("sh", "-c", "exit 3"), {}, "ExitCode", True, "exited with code 3"),
        (("sh", "-c", "exit 2"), {"non_retryable_exit_codes": [2]}, "ExitCode", False, "exited with code 2"),
        (("sh", "-c", "kill -9 $$"), {}, "Killed", True, "killed by signal SIGKILL"),
        (("no-such-program-here",), {}, "Config", False, "cannot run 'no-such-program-here'"),
    ],
)
async def test_exit_codes_map_to_typed_errors(
    shell_harness: Harness,
    tmp_path: Path,
    command: tuple[str, ...],
    options: dict[str, object],
    kind: str,
    retryable: bool,
    message: str,
) -> None:
    agent = Agent(name="exits", command=command, workdir=tmp_path, options=options)
    with pytest.raises(ApplicationError) as failed:
        await shell_harness.run(agent)
    assert (failed.value.type, not failed.value.non_retryable) == (kind, retryable)
    assert failed.value.message.startswith(message)


async def test_failed_output_travels_with_the_error(shell_harness: Harness, tmp_path: Path) -> None:
    agent = Agent(name="says", command=("sh", "-c", "echo why it failed; exit 1"), workdir=tmp_path)
    with pytest.raises(ApplicationError) as failed:
        await shell_harness.run(agent)
    assert failed.value.details[0]["output"] == "why it failed\n"


async def _false() -> bool:
    return False


async def _none_sleeping(*tokens: str) -> bool:
    return not any(sleeping(t) for t in tokens)
