"""Waiting for an event (a file, a lock, a process gone) with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

#: How often a condition is looked at: short, so that a wait ends soon after its event.
POLL_SECONDS = 0.05


def wait_until(
    condition: Callable[[], bool], timeout_s: float, every_s: float = POLL_SECONDS
) -> bool:
    """Return True as soon as CONDITION holds, False if it still does not after TIMEOUT_S.

    CONDITION is looked at every EVERY_S seconds (longer for one that costs a connection).
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every_s)
    return True
