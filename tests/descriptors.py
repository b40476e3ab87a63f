"""How many file descriptors this process holds: tests prove that nothing is left open."""

from __future__ import annotations

import os


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
