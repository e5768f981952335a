"""Child processes that do not outlive their parent, spawned without running Python in the child.

Never `asyncio.create_subprocess_exec` on uvloop, and never a `preexec_fn`. uvloop forks and then,
in the child, runs `PyOS_AfterFork_Child` for every process it spawns (a `preexec_fn` only adds
more Python after it). The Temporal SDK's core threads call into Python all the time, and each
call makes or drops a thread state under the interpreter's runtime lock without holding the GIL;
a fork while one of them holds that lock leaves the child waiting for it for ever, and the
parent's event loop blocked in `uv_spawn` reading the child's exec-status pipe: the whole worker
wedged, alive and silent. `spawn` starts a process with `subprocess.Popen` (C fork/vfork + exec,
no Python in the child) and attaches its output pipe and its exit (a pidfd) to the running loop,
whichever loop that is. The parent-death signal is set by a small program exec'd first
(Hookline's `hookline-die-with-parent`, or util-linux `setpriv --pdeathsig` where it is not
built), so the child only ever runs `exec`.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from hookline.logging import get_logger

__all__ = ["ChildProcess", "ManagedProcess", "StackError", "die_with_parent", "log_tail", "pdeathsig_wrapper", "spawn"]

log = get_logger(__name__)


#: The parent-death wrapper `make install` builds from hookline/native/die_with_parent.c.
HELPER = "hookline-die-with-parent"


@cache
def pdeathsig_wrapper() -> str | None:
    """The program that sets the parent-death signal and then execs the real one: Hookline's
    own helper (beside this interpreter, as `make install` builds it, or on PATH), else
    util-linux `setpriv` (essential on Debian; about 0.5 ms of CPU more per process);
    None, with a warning, where neither is installed."""
    beside = Path(sys.executable).with_name(HELPER)
    for found in (str(beside) if os.access(beside, os.X_OK) else None, shutil.which(HELPER), shutil.which("setpriv")):
        if found is not None:
            return found
    log.warning(
        "neither hookline-die-with-parent (make install) nor setpriv (util-linux) is installed: "
        "child processes will not be stopped if this process is killed"
    )
    return None


def die_with_parent(argv: Sequence[str], sig: signal.Signals = signal.SIGTERM) -> list[str]:
    """`argv` to exec instead of `argv`, so that the kernel sends `sig` to the process when its
    parent dies (PR_SET_PDEATHSIG, kept across exec): a SIGKILLed worker or launcher leaves no
    orphan running unsupervised. The parent is the calling process. Without a wrapper, `argv`
    unchanged."""
    wrapper = pdeathsig_wrapper()
    if wrapper is None:
        return list(argv)
    if os.path.basename(wrapper) == HELPER:
        return [wrapper, str(int(sig)), str(os.getpid()), *argv]
    return [wrapper, f"--pdeathsig={sig.name}", "--", *argv]


#: How long a program found on a PATH is taken as found there without looking again.
FOUND_FOR_S = 5.0
#: (program, PATH) → (the file, when it was found): a shell's hash of commands, kept briefly.
_found: dict[tuple[str, str], tuple[str, float]] = {}


def _resolve(program: str, cwd: Path | None, env: Mapping[str, str] | None) -> str:
    """The file `program` names, found as exec would find it for the child (its PATH, its
    working directory), so a missing program is an OSError here rather than the exit code of the
    wrapper that would have exec'd it.

    A program found on a PATH of absolute folders is looked up again after `FOUND_FOR_S` (or
    at once if that file is gone): a step's `true` is the 12th folder of a long PATH, and the
    search was most of what spawning it cost the worker beyond the exec itself."""
    if "/" in program:
        return _first_executable(
            [program if os.path.isabs(program) else os.path.join(cwd or os.getcwd(), program)], program
        )
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    key = (program, path)
    now = time.monotonic()
    hit = _found.get(key)
    if hit is not None and now - hit[1] < FOUND_FOR_S and os.path.isfile(hit[0]) and os.access(hit[0], os.X_OK):
        return hit[0]
    folders = path.split(os.pathsep)
    found = _first_executable([os.path.join(folder or ".", program) for folder in folders], program)
    if all(os.path.isabs(folder) for folder in folders):  # relative folders depend on cwd: not kept
        if len(_found) >= 1024:
            _found.clear()
        _found[key] = (found, now)
    return found


def _first_executable(candidates: list[str], program: str) -> str:
    found = False
    for candidate in candidates:
        if os.path.isfile(candidate):
            found = True
            if os.access(candidate, os.X_OK):
                return candidate
    code = errno.EACCES if found else errno.ENOENT
    raise OSError(code, os.strerror(code), program)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ChildProcess:
    """A process started by `spawn`: its output (stdout and stderr together) and its exit.
    The output pipe is read with the loop's `add_reader`, not as a pipe transport: uvloop closes
    a pipe's file descriptor twice (libuv, then the file object), and the second close can hit a
    descriptor another thread has just been given. `close()` releases the pipe."""

    def __init__(self, popen: subprocess.Popen[bytes], output_fd: int, exited: asyncio.Future[int]):
        self._popen = popen
        self._fd = output_fd
        self._exited = exited

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes of output; b"" once every writer has closed it."""
        if self._fd < 0:
            return b""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self._fd, size)
            except BlockingIOError:
                pass
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._fd, _wake, readable)
            try:
                await readable
            finally:
                loop.remove_reader(self._fd)

    async def wait(self) -> int:
        """The exit status: the code, or minus the signal that ended it."""
        return await asyncio.shield(self._exited)

    def kill_group(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """`sig` to the process group (everything the process started that stayed in it)."""
        try:
            os.killpg(self._popen.pid, sig)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


async def spawn(
    argv: Sequence[str],
    *,
    stdin: bytes = b"",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    die_signal: signal.Signals = signal.SIGKILL,
) -> ChildProcess:
    """Start `argv` in a session (and process group) of its own, `stdin` as its standard input
    (a file in memory, so a process that never reads it cannot fail the write), stdout and
    stderr into one pipe; `die_signal` reaches it if this process dies. Raises OSError (with
    `filename`) if the program or the working directory cannot be used."""
    loop = asyncio.get_running_loop()
    program = _resolve(argv[0], cwd, env)
    stdin_fd = os.memfd_create("hookline-stdin", os.MFD_CLOEXEC)
    read_fd, write_fd = os.pipe()
    try:
        view = memoryview(stdin)
        while view:
            view = view[os.write(stdin_fd, view) :]
        os.lseek(stdin_fd, 0, os.SEEK_SET)
        popen = subprocess.Popen(
            die_with_parent([program, *argv[1:]], die_signal),
            stdin=stdin_fd,
            stdout=write_fd,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(stdin_fd)
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    exited: asyncio.Future[int] = loop.create_future()
    pidfd = os.pidfd_open(popen.pid)

    def reap() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(popen.wait())

    loop.add_reader(pidfd, reap)
    return ChildProcess(popen, read_fd, exited)


class StackError(RuntimeError):
    """The local stack cannot start; the message says what is missing and what to do."""


def log_tail(log_path: Path, chars: int = 3000) -> str:
    """The end of a process's log, for an error that says why it stopped ("" if there is none)."""
    return log_path.read_text(errors="replace")[-chars:] if log_path.exists() else ""


@dataclass
class ManagedProcess:
    """A long-lived child (a server, a component): spawned in a session of its own, stopped with
    SIGTERM then SIGKILL, and sent SIGTERM by the kernel if this process dies."""

    name: str
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def spawn(self, argv: list[str], log_path: Path | None, env: Mapping[str, str] | None = None) -> None:
        """Start `argv`, its output appended to `log_path` (None: this process's own output)."""
        if self.log is not None:  # spawned again after it exited: the child has its own copy
            self.log.close()
            self.log = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            die_with_parent(argv, signal.SIGTERM),
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log is not None else None,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (minus the signal that ended it); None while
        it runs, and before it is spawned or after it is stopped."""
        return self.proc.poll() if self.proc is not None else None

    def check_alive(self, log_path: Path) -> None:
        if (code := self.returncode) is not None:
            raise StackError(f"{self.name} exited with code {code}; its log ({log_path}):\n{log_tail(log_path)}")

    async def until_ready(self, probe: Coroutine[Any, Any, None], log_path: Path) -> None:
        """Await the readiness probe, failing at once (with the log's tail) if the process dies."""
        waiter = asyncio.ensure_future(probe)
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=0.5)
            try:
                self.check_alive(log_path)
            except StackError:
                waiter.cancel()
                raise
        await waiter

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.log is not None:
            self.log.close()
        self.proc, self.log = None, None

    async def terminate(self, grace_s: float) -> None:
        """`stop` without blocking the loop: SIGTERM, `grace_s` to exit, then SIGKILL."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self.stop()

    @property
    def pid(self) -> int | None:
        """The process's id while it runs; None once it has exited (see `returncode`) or stopped."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill(self) -> None:
        """SIGKILL, as a crash would; the process can be spawned again afterwards."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.stop()
