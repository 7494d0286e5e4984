"""Runs and a client's ledger as the risk register's pure tests build them.

The entries are those the engine writes for alpenhof's two hosts; :class:`Ledger`
stores them one hour apart from :data:`T0`, as the ledger hands them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from support.service import stored
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.runs.records import (
    RUN_FINISHED,
    HostResult,
    HostStatus,
    Outcome,
    ResidualRisk,
    RunFinished,
    to_payload,
)
from webmg_ops.service import risks

T0 = datetime(2026, 5, 5, 21, 0, tzinfo=UTC)
TODAY = date(2026, 5, 6)
WEB, DB = "alpenhof-web1", "alpenhof-db1"
SSH_01 = "SSH-01 SSH password authentication disabled"


def run(
    number: int,
    action: str,
    reported: Sequence[ResidualRisk],
    *,
    outcome: Outcome = Outcome.SUCCEEDED,
    check: bool = False,
    statuses: dict[str, HostStatus] | None = None,
) -> NewEntry:
    """Return run ``run-NUMBER``'s run-finished entry as the engine writes it (both hosts
    seen, ok and changed, unless ``statuses`` says otherwise)."""
    seen = statuses or {WEB: HostStatus.OK, DB: HostStatus.CHANGED}
    record = RunFinished(
        run_id=f"run-{number}",
        action=action,
        check=check,
        outcome=outcome,
        started_seq=1,
        duration_s=60.0,
        hosts=tuple(HostResult(host=host, status=status) for host, status in seen.items()),
        residual_risks=tuple(reported),
    )
    return NewEntry(RUN_FINISHED, "alpenhof", to_payload(record))


class Ledger:
    """A client's entries as the ledger hands them back: seq 1, 2, ... one hour apart."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(self, *drafts: NewEntry) -> list[Entry]:
        """Store the drafts after the entries held; return them as stored."""
        new = stored(drafts, len(self.entries) + 1, T0 + timedelta(hours=len(self.entries)))
        self.entries.extend(new)
        return new

    def register(self, today: date = TODAY) -> dict[str, risks.Risk]:
        """Return the register the entries make on ``today``, by risk id."""
        return {risk.id: risk for risk in risks.register_of(self.entries, today=today)}

    def documents(self, today: date = TODAY) -> dict[str, dict[str, Any]]:
        """Return each risk's document (as ``risk list --json`` shows it), by risk id."""
        return {risk.id: risk.document() for risk in self.register(today).values()}
