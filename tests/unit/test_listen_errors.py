"""A component that cannot listen on its address stops at once with one line naming the
setting, instead of a traceback (or, in a supervisor's or a test's eyes, a process that never
becomes ready)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from hookline.health import ListenError, listening, serve_health

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process's socket listens on for the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("component", ["gateway", "triggers", "worker"])
def test_a_component_whose_port_is_taken_exits_with_one_line_naming_the_setting(
    component: str, taken_port: int, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        f"HOOKLINE_{component.upper()}__PORT": str(taken_port),
        # Nothing answers here: the port is taken before either is needed.
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "HOOKLINE_TEMPORAL__ADDRESS": "127.0.0.1:1",
        "HOOKLINE_AGENTS_FILE": str(ROOT / "examples" / "agents.yaml"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hookline.cli", component], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert done.returncode == 1, done.stderr.decode()
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last == (
        f"Error: {component}: cannot listen on 127.0.0.1:{taken_port}: address already in use "
        f"(its port is {component}.port, or HOOKLINE_{component.upper()}__PORT)"
    )
    assert "Traceback" not in done.stderr.decode()


async def test_serve_health_names_the_address_it_could_not_listen_on(taken_port: int) -> None:
    with pytest.raises(ListenError) as raised:
        async with serve_health(web.Application(), "127.0.0.1", taken_port):
            pass
    assert str(raised.value) == f"cannot listen on 127.0.0.1:{taken_port}: address already in use"


def test_only_the_errors_of_listening_become_a_listen_error() -> None:
    with pytest.raises(ListenError) as raised, listening("192.0.2.1", 80):
        raise OSError(errno.EADDRNOTAVAIL, "bind failed")
    assert str(raised.value) == "cannot listen on 192.0.2.1:80: cannot assign requested address"
    with pytest.raises(FileNotFoundError), listening("127.0.0.1", 80):
        raise FileNotFoundError(errno.ENOENT, "no such file")
