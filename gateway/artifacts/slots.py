"""A per-process count of holders of a bounded resource, for code that runs on the event loop thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class Slots:
    """At most `limit` holders at once; only the event loop's thread may take or give back a slot."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    @contextlib.contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Hold a slot for the block if one is free (True), else go on without one (False)."""
        if self.taken >= self.limit:
            yield False
            return
        self.taken += 1
        try:
            yield True
        finally:
            self.taken -= 1
