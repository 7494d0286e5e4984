"""Time zones by IANA name, each read from the system's time zone database once."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo


@cache
def time_zone(name: str) -> ZoneInfo:
    """Given an IANA time zone name, return its zone (the same object on every call).

    ZoneInfo keeps only the last eight zones it made alive: over a fleet whose clients
    live in more zones than that, each client's zone was read from its file again, a
    few times per client. Raise ZoneInfoNotFoundError or ValueError, as ZoneInfo does,
    for an unknown or malformed name (nothing is kept for it).
    """
    return ZoneInfo(name)


__all__ = ["time_zone"]
