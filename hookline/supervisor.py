"""Keeps `hookline run`'s components running: a child that exits, or whose liveness probe fails
(or does not answer) several times in a row, is replaced; one that keeps failing stops the lot.

A wedged process may not handle SIGTERM (its loop is what is stuck), so a replaced child gets
SIGTERM and, after a grace period, SIGKILL. That is safe for every component: the gateway answers
2xx only for what Kafka has, the triggers commit only what has started, and the worker's steps
are retried by Temporal after their heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from hookline.processes import ManagedProcess

__all__ = ["Child", "Supervisor"]


@dataclass
class Child:
    """A component to keep running: its argv, environment and liveness URL (None: exit only)."""

    name: str
    argv: list[str]
    env: Mapping[str, str] | None = None
    health_url: str | None = None
    process: ManagedProcess = field(init=False)
    started_at: float = field(init=False, default=0.0)
    answered: bool = field(init=False, default=False)
    failures: int = field(init=False, default=0)
    restarts: deque[float] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self.process = ManagedProcess(self.name)

    def start(self) -> None:
        self.process.spawn(self.argv, None, self.env)
        self.started_at = time.monotonic()
        self.answered, self.failures = False, 0

    @property
    def pid(self) -> int | None:
        return self.process.proc.pid if self.process.proc is not None else None


@dataclass
class Supervisor:
    """Starts the children, probes them every `probe_every_s`, replaces the failing ones."""

    children: list[Child]
    probe_every_s: float = 2.0
    probe_timeout_s: float = 3.0
    #: Consecutive failed probes that make a child unhealthy.
    unhealthy_after: int = 3
    #: A child that has never answered gets this long to come up before its failures count.
    start_grace_s: float = 60.0
    #: More than `max_restarts` replacements of one child within `window_s`: give up.
    max_restarts: int = 5
    window_s: float = 300.0
    #: How long a replaced or stopped child gets to exit after SIGTERM before SIGKILL.
    stop_grace_s: float = 10.0
    echo: Callable[[str], None] = print

    async def run(self, stop: asyncio.Event) -> int:
        """Supervise until `stop` is set (0) or a child fails too often (1); then stop them all."""
        for child in self.children:
            child.start()
        code = 0
        try:
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.probe_every_s)
                    if stop.is_set():
                        break
                    problems = await asyncio.gather(*(self._problem(c, session) for c in self.children))
                    for child, problem in zip(self.children, problems, strict=True):
                        if problem is None:
                            continue
                        if not self._may_restart(child):
                            self.echo(
                                f"{child.name} {problem}; replaced {self.max_restarts} times within "
                                f"{self.window_s:g}s already, stopping everything"
                            )
                            code = 1
                            stop.set()
                            break
                        self.echo(f"{child.name} {problem}; restarting it")
                        await self._terminate(child)
                        child.start()
        finally:
            await asyncio.gather(*(self._terminate(c) for c in self.children))
        return code

    async def _problem(self, child: Child, session: aiohttp.ClientSession) -> str | None:
        if child.process.pid is None:
            code = child.process.returncode
            return f"exited with code {'?' if code is None else code}"
        if child.health_url is None:
            return None
        try:
            timeout = aiohttp.ClientTimeout(total=self.probe_timeout_s)
            async with session.get(child.health_url, timeout=timeout) as response:
                detail = (await response.text())[:300]
                healthy = response.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            healthy, detail = False, f"no answer ({type(exc).__name__})"
        if healthy:
            child.answered, child.failures = True, 0
            return None
        child.failures += 1
        in_grace = not child.answered and time.monotonic() - child.started_at < self.start_grace_s
        if child.failures < self.unhealthy_after or in_grace:
            return None
        return f"failed its liveness probe {child.failures} times in a row ({detail})"

    def _may_restart(self, child: Child) -> bool:
        now = time.monotonic()
        while child.restarts and now - child.restarts[0] > self.window_s:
            child.restarts.popleft()
        if len(child.restarts) >= self.max_restarts:
            return False
        child.restarts.append(now)
        return True

    async def _terminate(self, child: Child) -> None:
        await child.process.terminate(self.stop_grace_s)
