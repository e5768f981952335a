"""The local stack refuses clearly when it cannot start (no Kafka or Temporal is started here)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hookline.stack import KafkaServer, StackError, TemporalServer
from tests.conftest import ROOT


async def test_port_in_use_is_reported_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        server = KafkaServer(tmp_path, ROOT / ".cache", port=port, controller_port=port + 1)
        with pytest.raises(StackError, match=f"port {port} for Kafka is already in use"):
            await server.start()


async def test_temporal_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} for Temporal"):
            await TemporalServer(tmp_path, port=port).start()


async def test_missing_java_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither java nor mvn on PATH
    server = KafkaServer(tmp_path / "k", tmp_path / "cache", port=0, controller_port=0)
    with pytest.raises(StackError, match=r"(mvn|java)` is not installed"):
        await server.start()
