"""Sending one notification through Apprise, its log kept out of every output.

Apprise reports a failed delivery in its log, where the URL (with its
resolved secrets) may appear. That log is captured here instead of reaching
the process's handlers, and returned as the error, for the caller to mask
before recording it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

#: Sends (resolved URL, title, body) and returns None when delivered, else the reason.
Sender = Callable[[str, str, str], str | None]

_LOGGER = "apprise"


def send_apprise(url: str, title: str, body: str) -> str | None:
    """Given a resolved Apprise URL, a title and a body, send one notification and return
    None when the target accepted it, else the reason (Apprise's log of the attempt,
    unmasked: the caller masks it)."""
    # Imported here: Apprise loads its plugins in a fifth of a second, which every other
    # command would pay for nothing.
    import apprise

    logger = logging.getLogger(_LOGGER)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    previous = (logger.propagate, logger.level)
    # Nothing of the attempt reaches the process's own log: it may hold the secret.
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return "Apprise cannot read the target URL"
        delivered = notifier.notify(title=title, body=body)
    finally:
        logger.removeHandler(handler)
        logger.propagate, _level = previous
        logger.setLevel(previous[1])
    if delivered:
        return None
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "the target did not accept the notification"
