"""`freeze_startup_objects`: what lives when a worker is ready leaves the cyclic collector's walks."""

from __future__ import annotations

import gc

from gateway.memory import freeze_startup_objects


def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not() -> None:
    class Startup:
        pass

    before = Startup()
    try:
        freeze_startup_objects()
        after = Startup()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        tracked = {id(obj) for obj in gc.get_objects()}  # the collector's generations, not the frozen ones
        assert id(before) not in tracked and id(after) in tracked
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
