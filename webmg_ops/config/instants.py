"""Times typed on the command line: one rule for every time option of every command.

A time is ISO 8601 with its UTC offset (``Z`` for UTC). A time without one is refused
rather than read in a zone the person typing it may not have meant: the controller's,
UTC and the client's differ by hours, enough to miss a window or a breach.
"""

from __future__ import annotations

from datetime import UTC, datetime

from webmg_ops.errors import BadInput

#: The accepted forms, as every refusal names them.
ACCEPTED_FORMS = (
    "write it with its offset, e.g. 2026-07-01T09:00+02:00, or Z for UTC: 2026-07-01T07:00Z"
)


def parse_instant(option: str, text: str) -> datetime:
    """Given an option's name (``--at``) and the time typed, return it as an aware UTC
    datetime.

    Raise BadInput naming the option and the accepted forms if the text is not ISO 8601
    or carries no offset (a date alone included).
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{option} {text!r} is not an ISO 8601 time; {ACCEPTED_FORMS}") from None
    if moment.tzinfo is None:
        raise BadInput(f"{option} {text!r} needs a UTC offset; {ACCEPTED_FORMS}")
    return moment.astimezone(UTC)
