"""Liveness and readiness that a stuck process cannot fake.

Every component serves `/healthz` (liveness: restart me if this fails) and `/readyz` (readiness:
send me work only if this answers 200). Liveness includes the event loop's own lag: a loop that
runs a 0.25 s timer seconds late is not serving anyone, and one that does not turn at all does not
answer the probe, which is a failure too (the supervisor and Kubernetes probe with a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import orjson
from aiohttp import web

from hookline.lifecycle import cancel_and_wait

__all__ = ["Check", "HealthRoutes", "ListenError", "LoopWatch", "listening", "serve_health"]

#: A named check: None when healthy, else what is wrong (one line, no secrets).
Check = Callable[[], Awaitable[str | None]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


class LoopWatch:
    """Measures how late the event loop runs a periodic timer (its lag)."""

    def __init__(self, *, interval_s: float = 0.25, bound_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.bound_s = bound_s
        self.lag_s = 0.0
        self._last_beat = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval_s)
            now = time.monotonic()
            self.lag_s = max(0.0, now - before - self.interval_s)
            self._last_beat = now

    def start(self) -> None:
        if self._task is None:
            self._last_beat = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="loop-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def current_lag_s(self) -> float:
        """The larger of the last measured lag and the time the next beat is overdue by."""
        overdue = time.monotonic() - self._last_beat - self.interval_s
        return max(self.lag_s, overdue, 0.0)

    async def check(self) -> str | None:
        lag = self.current_lag_s()
        if lag > self.bound_s:
            return f"event loop lag {lag:.1f}s exceeds {self.bound_s:g}s"
        return None


def _answer(checks: dict[str, Check], ok: str, failing: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        problems = {}
        for name, check in checks.items():
            try:
                problem = await asyncio.wait_for(check(), 2.0)
            except Exception as exc:  # a check that fails to answer is a failing check
                problem = f"check failed: {type(exc).__name__}"
            if problem is not None:
                problems[name] = problem
        body = {"status": failing if problems else ok, "problems": problems}
        return web.Response(body=orjson.dumps(body), status=503 if problems else 200, content_type="application/json")

    return handler


@dataclass
class HealthRoutes:
    """The checks behind `/healthz` (liveness) and `/readyz` (readiness)."""

    watch: LoopWatch
    live: dict[str, Check]
    ready: dict[str, Check]

    def add_to(self, app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
        """Adds the two routes (each handler through `wrap`), and starts and stops the loop
        watch with the app."""

        async def watching(app: web.Application) -> AsyncIterator[None]:
            self.watch.start()
            yield
            await self.watch.stop()

        app.cleanup_ctx.append(watching)
        app.router.add_get("/healthz", wrap(_answer({"loop": self.watch.check, **self.live}, "ok", "unhealthy")))
        app.router.add_get("/readyz", wrap(_answer({"loop": self.watch.check, **self.ready}, "ready", "not ready")))

    @classmethod
    def of(
        cls,
        *,
        live: dict[str, Check] | None = None,
        ready: dict[str, Check] | None = None,
        watch: LoopWatch | None = None,
    ) -> HealthRoutes:
        return cls(watch or LoopWatch(), dict(live or {}), dict(ready or {}))


#: The errors of a listen() that the one who configured the address can act on.
_LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


class ListenError(Exception):
    """A server could not listen on its address (taken, not this machine's, or privileged)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {os.strerror(error.errno or 0).lower()}")


@contextlib.contextmanager
def listening(host: str, port: int) -> Iterator[None]:
    """Turns the block's failure to listen on `host:port` into a `ListenError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRNOS:
            raise
        raise ListenError(host, port, exc) from exc


@contextlib.asynccontextmanager
async def serve_health(app: web.Application, host: str, port: int | None) -> AsyncIterator[int | None]:
    """Serve `app` (health and metrics of a process that is not a web server) on `host:port`
    for the block; yields the bound port (port 0 picks a free one), or None when `port` is None."""
    if port is None:
        yield None
        return
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        with listening(host, port):
            await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
