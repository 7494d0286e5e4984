"""The revision of the playbooks and roles a run plays: the checkout's git revision,
recorded with every run and every queued job."""

from __future__ import annotations

from pathlib import Path

from webmg_ops import process

#: The checkout the product runs from (its playbooks and roles are versioned with it).
CHECKOUT = Path(__file__).resolve().parents[2]
_GIT_TIMEOUT_S = 5


def project_revision() -> str:
    """Return the checkout's git revision (12 hex digits), ``unknown`` outside a git checkout.

    Recorded with every run, and with every queued job so that a worker on another
    revision refuses it.
    """
    try:
        done = process.run(
            ["git", "-C", str(CHECKOUT), "rev-parse", "--short=12", "HEAD"], timeout=_GIT_TIMEOUT_S
        )
    except process.StartFailed:
        return "unknown"
    revision = done.stdout.strip() if done.ok else "unknown"
    return revision or "unknown"
