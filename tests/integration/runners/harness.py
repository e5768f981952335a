"""The runner contract harness: how each runner kind is driven through the contract suite."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from temporalio.testing import ActivityEnvironment

from schemas.agents import Agent, AgentCatalog
from schemas.run import StepRequest, StepResult
from worker.activities import StepActivities
from worker.runners import Runner

Behaviour = Literal["echo", "fail", "slow", "flood", "bad_config"]
#: What every contract test sends; the "echo" behaviour returns the step context it got.
INPUT = {"n": 1, "label": "; id $(id) `id` --help"}
CAP = 4096


def sleep_token() -> str:
    """A `sleep` argument no other process has, so the process can be found (or not) in /proc."""
    return f"{600 + secrets.randbelow(300)}.{secrets.randbelow(10**6):06d}"


def sleeping(token: str) -> bool:
    """Is a `sleep <token>` process alive on this machine (containers' processes included)?"""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in argv and state != "Z":
            return True
    return False


@dataclass
class Harness:
    """A runner kind ready to run: `agent(behaviour, token)` builds an agent of that behaviour
    (`slow` sleeps on `token`), `running(token)` says whether that slow work is still going."""

    kind: str
    runner: Runner[Any]
    agent: Callable[[Behaviour, str], Agent]
    running: Callable[[str], Awaitable[bool]]
    heartbeats: list[Any] = field(default_factory=list)

    def activities(self, agent: Agent) -> StepActivities:
        return StepActivities(
            AgentCatalog(agents={agent.name: agent}),
            {self.kind: self.runner},
            inline_runners=frozenset(),
            heartbeat_s=0.2,
        )

    def environment(self) -> ActivityEnvironment:
        env = ActivityEnvironment()
        env.on_heartbeat = lambda *details: self.heartbeats.append(details)
        return env

    async def run(self, agent: Agent, env: ActivityEnvironment | None = None) -> StepResult:
        """The step through the real activity (classification included), outside Temporal."""
        request = StepRequest(workflow_id=f"contract-{agent.name}", step="contract", agent=agent.name, input=INPUT)
        env = env or self.environment()
        result: StepResult = await env.run(self.activities(agent).run_step, request)
        return result


async def process_running(token: str) -> bool:
    return await asyncio.to_thread(sleeping, token)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


def cleanup_sleepers(token: str) -> None:
    """Belt and braces for a failing test: no `sleep <token>` outlives it."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), 9)
            except OSError:
                continue
