"""`hookline run`'s supervisor replaces a child that exits or stops answering its liveness probe,
and gives up on one that keeps failing. Real child processes, no Kafka or Temporal."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from hookline.stack import free_port
from hookline.supervisor import Child, Supervisor

# A child with a liveness endpoint, as the components have.
SERVE_HEALTH = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def quick(**overrides: float) -> dict[str, float]:
    return {"probe_every_s": 0.2, "probe_timeout_s": 0.5, "unhealthy_after": 2, "stop_grace_s": 2.0, **overrides}


async def until(condition: object, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_a_child_that_exits_is_started_again(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    child = Child(
        "flaky", [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x'); import time; time.sleep(0.3)"]
    )
    stop = asyncio.Event()
    running = asyncio.create_task(Supervisor([child], echo=lambda _: None, **quick()).run(stop))
    await until(lambda: marker.exists() and len(marker.read_text()) >= 3)
    stop.set()
    assert await running == 0


async def test_a_child_that_keeps_failing_stops_everything() -> None:
    lines: list[str] = []
    failing = Child("broken", [sys.executable, "-c", "raise SystemExit(3)"])
    healthy = Child("steady", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor([failing, healthy], echo=lines.append, **quick(max_restarts=3, window_s=60))
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 30) == 1
    assert lines[:3] == ["broken exited with code 3; restarting it"] * 3
    assert lines[3] == "broken exited with code 3; replaced 3 times within 60s already, stopping everything"
    assert healthy.process.proc is None  # stopped with the rest


async def test_a_frozen_child_is_killed_and_replaced() -> None:
    port = free_port()
    child = Child(
        "server", [sys.executable, "-c", SERVE_HEALTH, str(port)], health_url=f"http://127.0.0.1:{port}/healthz"
    )
    lines: list[str] = []
    stop = asyncio.Event()
    running = asyncio.create_task(Supervisor([child], echo=lines.append, **quick()).run(stop))
    try:
        await until(lambda: child.answered)
        frozen = child.pid
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)  # alive, and answering nothing: as a wedged event loop
        await until(lambda: child.pid != frozen and child.answered)
        assert len(lines) == 1 and lines[0].startswith("server failed its liveness probe 2 times in a row (no answer")
        try:
            os.kill(frozen, 0)
            raise AssertionError("the frozen child is still there")
        except ProcessLookupError:
            pass
    finally:
        stop.set()
        assert await running == 0
