"""Durations written the way engineers write them: ``30m``, ``4h``, ``2d``, ``1w``.

Contracts and policies state cadences, delays and response times as short
strings; this module turns them into :class:`datetime.timedelta` and back.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
DURATION_PATTERN = r"^\d+[smhdw]$"


def parse_duration(text: Any) -> timedelta:
    """Given ``"<number><unit>"`` (unit s, m, h, d or w), return the timedelta.

    A timedelta passes through unchanged. Raise ValueError if the text is not
    of that form or is zero.
    """
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str):
        raise ValueError("a duration is a string such as '30m', '4h', '2d' or '1w'")
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as '30m', '4h', '2d' or '1w'")
    count, unit = int(match.group(1)), match.group(2)
    if count == 0:
        raise ValueError("a duration must be longer than zero")
    return count * _UNITS[unit]


def format_duration(value: timedelta) -> str:
    """Given a timedelta, return its shortest exact form (``"7d"``, ``"90m"``)."""
    seconds = int(value.total_seconds())
    # Days rather than weeks: cadences read as "7d", "91d", as in the level table.
    for unit in ("d", "h", "m"):
        size = int(_UNITS[unit].total_seconds())
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


#: A pydantic field type for durations: parsed from text, written back as text.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
