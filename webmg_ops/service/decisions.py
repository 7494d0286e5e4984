"""Decisions: the recorded arbitration of the client or the agency.

A decision is one ``decision-recorded`` entry: a title, who decided, for which
party (the client or the agency) and a note. Other flows record theirs with
:func:`draft_decision`, in the same transaction as their own entry, naming the
item it concerns as ``subject`` (an out-of-scope change accepted, a risk
accepted): the item's history then names the decision, and ``decision list``
shows what each decision was about. Pure: entries in, drafts or decisions out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.service.ids import DECISION_PREFIX, format_id

DECISION_RECORDED = "decision-recorded"

#: Who a decision binds: the client (arbitration, acceptance) or the agency.
PARTIES: tuple[str, ...] = ("client", "agency")


@dataclass(frozen=True)
class Decision:
    """One recorded decision."""

    id: str
    seq: int
    client: str
    at: datetime
    recorded_by: str
    title: str
    by: str
    party: str
    note: str
    subject: str | None

    def document(self) -> dict[str, Any]:
        """Return the decision as a JSON-ready document."""
        return {
            "id": self.id,
            "client": self.client,
            "at": self.at.isoformat(),
            "recorded_by": self.recorded_by,
            "title": self.title,
            "by": self.by,
            "party": self.party,
            "note": self.note,
            "subject": self.subject,
        }


def required_text(option: str, value: str) -> str:
    """Given an option's name and its value, return the value stripped.

    Raise BadInput if it is empty or blank.
    """
    text = value.strip()
    if not text:
        raise BadInput(f"{option} is empty")
    return text


def draft_decision(
    client: str,
    *,
    title: str,
    by: str,
    party: str,
    note: str,
    subject: str | None = None,
) -> NewEntry:
    """Given a client, the decision's title, who decided, the party, a note and the item it
    concerns (None: none), return the ``decision-recorded`` entry to append.

    Raise BadInput for a blank title, decider or note, or an unknown party.
    """
    if party not in PARTIES:
        raise BadInput(f"--party {party!r} must be one of {', '.join(PARTIES)}")
    payload: dict[str, Any] = {
        "title": required_text("--title", title),
        "by": required_text("--by", by),
        "party": party,
        "note": required_text("--note", note),
    }
    if subject is not None:
        payload["subject"] = subject
    return NewEntry(DECISION_RECORDED, client, payload)


def decision_of(entry: Entry) -> Decision:
    """Given a ``decision-recorded`` entry, return the decision it records."""
    payload = entry.payload
    return Decision(
        id=format_id(DECISION_PREFIX, entry.seq),
        seq=entry.seq,
        client=entry.client or "",
        at=entry.at,
        recorded_by=entry.actor,
        title=str(payload["title"]),
        by=str(payload["by"]),
        party=str(payload["party"]),
        note=str(payload["note"]),
        subject=payload.get("subject"),
    )


def decisions_of(entries: Iterable[Entry]) -> list[Decision]:
    """Given entries (any kinds, oldest first), return the decisions among them, oldest first."""
    return [decision_of(entry) for entry in entries if entry.kind == DECISION_RECORDED]


def latest_decision_on(entries: Iterable[Entry], subject: str, before_seq: int) -> Decision | None:
    """Given entries (oldest first), an item's id and a seq, return the last decision on
    that item recorded before that seq (the one recorded with the item's entry), if any."""
    found: Decision | None = None
    for entry in entries:
        if entry.seq >= before_seq:
            break
        if entry.kind == DECISION_RECORDED and entry.payload.get("subject") == subject:
            found = decision_of(entry)
    return found
