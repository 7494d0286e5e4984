"""Time zones are read once per process: a fleet's clients live in more zones than
ZoneInfo keeps alive, and each is still the same zone for every client."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfoNotFoundError, available_timezones

import pytest

from webmg_ops.config.zones import time_zone


def test_a_zone_is_the_same_object_after_many_others() -> None:
    first = time_zone("Europe/Vienna")
    for name in sorted(available_timezones())[:50]:
        time_zone(name)
    assert time_zone("Europe/Vienna") is first
    assert first.key == "Europe/Vienna"
    # Vienna is an hour ahead of UTC in winter, two in summer.
    assert datetime(2026, 1, 15, 12, tzinfo=UTC).astimezone(first).hour == 13
    assert datetime(2026, 7, 15, 12, tzinfo=UTC).astimezone(first).hour == 14


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/Vienna/../Paris"])
def test_an_unknown_zone_is_refused_every_time(name: str) -> None:
    for _ in range(2):
        with pytest.raises((ZoneInfoNotFoundError, ValueError)):
            time_zone(name)
