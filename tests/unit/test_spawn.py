"""Spawning step processes: never a fork that runs Python in a threaded worker, never an orphan."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def test_a_step_dies_with_the_process_that_spawned_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys; from hookline.processes import spawn\n"
            "async def main():\n"
            f"    await spawn(['sh', '-c', 'echo $$ > {pid_file}; exec sleep 60'])\n"
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
