"""The controller's own time zone, set for a test and put back whatever happens."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator


@contextlib.contextmanager
def controller_zone(zone: str) -> Iterator[None]:
    """Within the block, the machine's local time is ZONE (an IANA name or a POSIX TZ
    string such as ``WEBMG-14``); the zone it had comes back afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
