"""Child processes that do not outlive their parent."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` asking the kernel to send `sig` to the child when its parent dies, so a
    SIGKILLed worker or launcher leaves no orphan behind."""

    def preexec() -> None:
        # Runs in the child between fork and exec.
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return preexec
