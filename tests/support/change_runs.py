"""A deploy's run entries as the change tests build them."""

from __future__ import annotations

from webmg_ops.ledger import NewEntry

#: The change every change test follows: the first entry of its story.
CHANGE = "CHG-1"


def run_started(
    run_id: str, approval_seq: int | None, *, check: bool = False, change: str = CHANGE
) -> NewEntry:
    """A deploy's ``run-started`` for alpenhof as the engine writes it (the fields a
    change reads)."""
    return NewEntry(
        "run-started",
        "alpenhof",
        {
            "run_id": run_id,
            "action": "deploy",
            "check": check,
            "approval_seq": approval_seq,
            "change": change,
        },
    )
