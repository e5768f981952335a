"""Spawning step processes: never a fork that runs Python in a threaded worker, never an orphan."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hookline import processes
from hookline.processes import spawn

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("hookline", "gateway", "triggers", "worker", "schemas")


def test_steps_spawned_while_native_threads_enter_python_never_wedge_the_worker_loop() -> None:
    # uvloop's own spawn (asyncio.create_subprocess_exec) wedged this in 3 of 3 runs: a child
    # stuck in PyOS_AfterFork_Child, the parent's loop blocked in uv_spawn for good.
    script = ROOT / "tests" / "unit" / "spawn_stress.py"
    try:
        done = subprocess.run(
            [sys.executable, str(script), "1500"], capture_output=True, text=True, timeout=90, start_new_session=True
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"spawning 1500 steps wedged the event loop: {exc}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "spawned 1500"


def wrappers() -> dict[str, str]:
    """Both ways a step gets its parent-death signal: Hookline's helper (`make install` builds
    it beside the virtualenv's python) and setpriv, the fallback."""
    helper = Path(sys.executable).with_name(processes.HELPER)
    assert os.access(helper, os.X_OK), f"{helper} is missing: `make install` builds it"
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is missing"
    return {"helper": str(helper), "setpriv": setpriv}


def test_the_helper_is_the_wrapper_steps_start_through() -> None:
    assert processes.pdeathsig_wrapper() == wrappers()["helper"]
    assert processes.die_with_parent(["true", "x"], signal.SIGKILL) == [
        wrappers()["helper"],
        str(int(signal.SIGKILL)),
        str(os.getpid()),
        "true",
        "x",
    ]


@pytest.mark.parametrize("wrapper", ["helper", "setpriv"])
def test_a_step_dies_with_the_process_that_spawned_it(wrapper: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys; from hookline import processes\n"
            f"processes.pdeathsig_wrapper = lambda: {wrappers()[wrapper]!r}\n"
            "async def main():\n"
            f"    await processes.spawn(['sh', '-c', 'echo $$ > {pid_file}; exec sleep 60'])\n"
            "    await asyncio.sleep(60)\n"
            "asyncio.run(main())",
        ],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        step = int(pid_file.read_text())
        os.kill(step, 0)  # running
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(step, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(step, signal.SIGKILL)
    pytest.fail("the step outlived the SIGKILLed process that spawned it")


def test_the_helper_runs_nothing_once_its_parent_is_gone(tmp_path: Path) -> None:
    # PID 1 is not its parent: as if the parent died between the spawn and the signal's setting.
    marker = tmp_path / "ran"
    helper = wrappers()["helper"]
    done = subprocess.run([helper, str(int(signal.SIGTERM)), "1", "touch", str(marker)], capture_output=True)
    assert done.returncode == -signal.SIGTERM
    assert not marker.exists()


@pytest.mark.parametrize(
    ("program", "code", "message"), [("missing", 127, "No such file"), ("data", 126, "Permission denied")]
)
def test_the_helper_says_why_a_program_cannot_run(program: str, code: int, message: str, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a program\n")  # not executable
    path = str(tmp_path / program)
    done = subprocess.run(
        [wrappers()["helper"], str(int(signal.SIGTERM)), str(os.getpid()), path], capture_output=True, text=True
    )
    assert done.returncode == code
    assert f"failed to execute {path}: {message}" in done.stderr


@pytest.mark.parametrize(
    "arguments", [[], ["15"], ["15", "1"], ["0", "1", "true"], ["15", "x", "true"], ["99", "1", "true"]]
)
def test_the_helper_refuses_arguments_it_cannot_use(arguments: list[str]) -> None:
    done = subprocess.run([wrappers()["helper"], *arguments], capture_output=True, text=True)
    assert done.returncode == 127
    assert "usage: hookline-die-with-parent SIGNAL PARENT-PID PROGRAM" in done.stderr


def test_a_program_found_on_path_is_looked_up_again_when_it_goes_or_the_time_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    program = second / "tool-hookline"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    env = {"PATH": f"{first}{os.pathsep}{second}"}
    assert processes._resolve("tool-hookline", None, env) == str(program)
    # Found again without a search while the entry is fresh, even with a new one earlier on PATH.
    earlier = first / "tool-hookline"
    earlier.write_text("#!/bin/sh\n")
    earlier.chmod(0o755)
    assert processes._resolve("tool-hookline", None, env) == str(program)
    monkeypatch.setattr(processes, "FOUND_FOR_S", 0.0)  # time up: searched again
    assert processes._resolve("tool-hookline", None, env) == str(earlier)
    monkeypatch.setattr(processes, "FOUND_FOR_S", 60.0)
    assert processes._resolve("tool-hookline", None, env) == str(earlier)
    earlier.unlink()  # gone: searched again at once
    assert processes._resolve("tool-hookline", None, env) == str(program)
    program.chmod(0o644)  # no longer executable: searched again, and there is none
    with pytest.raises(PermissionError):
        processes._resolve("tool-hookline", None, env)


@pytest.mark.parametrize("program", ["no-such-program-hookline", "./no-such-program-hookline", "not-executable"])
async def test_a_program_that_cannot_run_is_an_os_error_naming_it(program: str, tmp_path: Path) -> None:
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    with pytest.raises(OSError) as failed:
        await spawn([str(tmp_path / program) if program == "not-executable" else program], cwd=tmp_path)
    assert failed.value.filename.endswith(program)


async def test_output_and_exit_status_of_a_step() -> None:
    child = await spawn(["sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"in\n")
    try:
        output = b""
        while chunk := await child.read(4):
            output += chunk
        assert (output, await child.wait()) == (b"in\nerr\n", 3)
    finally:
        child.close()


def test_no_product_code_spawns_through_the_event_loop_or_with_a_preexec_fn() -> None:
    # Both run Python in a forked child of a threaded process (see hookline.processes).
    banned = re.compile(r"preexec_fn|create_subprocess_(?:exec|shell)|\.subprocess_(?:exec|shell)\(")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in PRODUCT
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if banned.search(line) and path.name != "processes.py"
    ]
    assert found == []


def test_a_program_found_on_a_path_with_a_relative_folder_is_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback, plain, with_bin = tmp_path / "fallback", tmp_path / "plain", tmp_path / "with-bin"
    for folder in (fallback, plain, with_bin / "bin"):
        folder.mkdir(parents=True)
    for program in (fallback / "tool-hookline", with_bin / "bin" / "tool-hookline"):
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    env = {"PATH": f"bin{os.pathsep}{fallback}"}  # `bin` of whichever directory the spawn is in
    monkeypatch.chdir(plain)
    assert processes._resolve("tool-hookline", None, env) == str(fallback / "tool-hookline")
    monkeypatch.chdir(with_bin)
    assert processes._resolve("tool-hookline", None, env) == "bin/tool-hookline"
