"""Child processes that cannot outlive the command that started them (Linux)."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def child_dies_with_parent() -> None:
    """``preexec_fn``: ask the kernel to SIGTERM the child when its parent dies, even by
    ``kill -9``, so ``make demo`` never leaves a broker or worker behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
