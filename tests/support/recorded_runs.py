"""Run-finished entries appended the way the engine records them, for report tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from webmg_ops.ledger import Entry, Ledger


def append_run_finished(
    ledger: Ledger, client: str, run_id: str, action: str, at: datetime, **fields: Any
) -> Entry:
    """Append a succeeded, real (not check-mode) run's run-finished entry of ``action`` at
    ``at``; ``fields`` replace the payload's (``outcome``, ``check``, ``evidence``...)."""
    payload = {
        "run_id": run_id,
        "action": action,
        "check": False,
        "outcome": "succeeded",
        "started_seq": 0,
        "duration_s": 60,
        "hosts": [],
        "evidence": {},
        **fields,
    }
    return ledger.append("run-finished", client, payload, at=at)
