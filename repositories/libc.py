"""The C library through ctypes, for the few calls Python's `os` module lacks (glibc tuning, Linux I/O hints)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def libc_function(name: str) -> Any | None:
    """The C library's function `name`, or None where there is no such function (another libc, another OS).

    Calls through it release the GIL, like every ctypes call.
    """
    return getattr(_libc(), name, None)
