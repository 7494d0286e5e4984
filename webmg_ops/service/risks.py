"""The risk register: risks added by hand and the residual risks that runs report.

Runs record their residual risks in each ``run-finished`` entry
(``residual_risks``: host, risk, reason; the hardening action names the control
first, e.g. ``SSH-01 SSH password authentication disabled`` or ``drift: SSH-01
...``). The register is derived from those entries at read time, with no writer of
its own:

- one item per (host, control) while it is open: a later report of the same
  pair refreshes the item instead of adding one. The control is the hardening
  control's id when the risk names one, else the risk's text with its numbers
  blanked (``3 security update(s) pending`` and ``5 security update(s) pending``
  are one risk);
- an item from runs is named by the run-finished entry that first reported it
  and its place in that entry's list (``RSK-44.2``);
- it closes by itself when a later run of a kind that reported it (same action,
  same dry-run flag) succeeds on its host without reporting it;
- a report after the item was closed opens a new item.

By hand: ``risk-added`` (``RSK-<seq>``), ``risk-accepted`` (the client's decision,
recorded as a ``decision-recorded`` entry in the same transaction, valid until a
date: past it, the risk is open again) and ``risk-closed``. Pure: entries in,
drafts or the register out; today's date is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.runs.records import RUN_FINISHED, HostStatus, Outcome
from webmg_ops.service.decisions import (
    DECISION_RECORDED,
    draft_decision,
    latest_decision_on,
    required_text,
)
from webmg_ops.service.ids import RISK_PREFIX, format_id

RISK_ADDED = "risk-added"
RISK_ACCEPTED = "risk-accepted"
RISK_CLOSED = "risk-closed"

#: Every kind the register is derived from.
REGISTER_KINDS: tuple[str, ...] = (
    RISK_ADDED,
    RISK_ACCEPTED,
    RISK_CLOSED,
    RUN_FINISHED,
    DECISION_RECORDED,
)

#: Impact and likelihood of a risk added by hand.
RATINGS: tuple[str, ...] = ("low", "medium", "high")

#: Hosts whose state a run saw: only there can it tell that a risk is gone.
_SEEN = frozenset({HostStatus.OK.value, HostStatus.CHANGED.value})

_CONTROL_ID = re.compile(r"\b([A-Z]{2,}-[0-9]{2,})\b")
_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)?")


class RiskState(StrEnum):
    """Where a risk stands."""

    OPEN = "open"
    ACCEPTED = "accepted"
    CLOSED = "closed"


@dataclass(frozen=True)
class Risk:
    """One item of the register."""

    id: str
    client: str
    title: str
    host: str | None
    control: str
    source: str
    opened_at: datetime
    impact: str | None = None
    likelihood: str | None = None
    reason: str = ""
    state: RiskState = RiskState.OPEN
    #: The kinds of run (action, dry run) that reported it.
    reported_by: tuple[tuple[str, bool], ...] = ()
    last_run: str | None = None
    last_reported_at: datetime | None = None
    accepted_by: str | None = None
    accepted_until: date | None = None
    acceptance_decision: str | None = None
    acceptance_expired: bool = False
    closed_at: datetime | None = None
    closed_note: str | None = None
    closed_by_run: str | None = None

    @property
    def key(self) -> tuple[str | None, str]:
        """The (host, control) pair the register deduplicates on."""
        return (self.host, self.control)

    @property
    def is_open(self) -> bool:
        """Return whether the risk is still in force (open or accepted)."""
        return self.state is not RiskState.CLOSED

    def document(self) -> dict[str, Any]:
        """Return the risk as a JSON-ready document."""
        return {
            "id": self.id,
            "client": self.client,
            "title": self.title,
            "host": self.host,
            "control": self.control,
            "source": self.source,
            "impact": self.impact,
            "likelihood": self.likelihood,
            "reason": self.reason,
            "state": self.state.value,
            "opened_at": self.opened_at.isoformat(),
            "reported_by": [
                {"action": action, "check": check} for action, check in self.reported_by
            ],
            "last_run": self.last_run,
            "last_reported_at": self.last_reported_at.isoformat()
            if self.last_reported_at
            else None,
            "accepted_by": self.accepted_by,
            "accepted_until": self.accepted_until.isoformat() if self.accepted_until else None,
            "acceptance_decision": self.acceptance_decision,
            "acceptance_expired": self.acceptance_expired,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "closed_note": self.closed_note,
            "closed_by_run": self.closed_by_run,
        }


def control_of(risk: str) -> str:
    """Given a residual risk's text, return the control it is about: the hardening
    control's id when it names one, else the text with its numbers blanked."""
    found = _CONTROL_ID.search(risk)
    if found is not None:
        return found.group(1)
    return " ".join(_NUMBER.sub("#", risk).split())


def _report(risk: Risk, entry: Entry, kind: tuple[str, bool], reason: str) -> Risk:
    kinds = risk.reported_by if kind in risk.reported_by else (*risk.reported_by, kind)
    return replace(
        risk,
        reported_by=kinds,
        last_run=entry.payload.get("run_id"),
        last_reported_at=entry.at,
        reason=reason or risk.reason,
    )


def _read_run(risks: dict[str, Risk], entry: Entry) -> None:
    payload = entry.payload
    kind = (str(payload.get("action")), bool(payload.get("check")))
    reported: set[tuple[str | None, str]] = set()
    open_by_key = {risk.key: risk.id for risk in risks.values() if risk.is_open}
    for index, item in enumerate(payload.get("residual_risks") or (), start=1):
        host = item.get("host") or None
        text = str(item.get("risk", ""))
        # The run log, too, reads a residual risk recorded without a reason as one with none.
        reason = str(item.get("reason", ""))
        key = (host, control_of(text))
        reported.add(key)
        known = open_by_key.get(key)
        if known is not None:
            risks[known] = _report(risks[known], entry, kind, reason)
            continue
        risk_id = format_id(RISK_PREFIX, entry.seq, index)
        risks[risk_id] = _report(
            Risk(
                id=risk_id,
                client=entry.client or "",
                title=text,
                host=host,
                control=key[1],
                source="run",
                opened_at=entry.at,
            ),
            entry,
            kind,
            reason,
        )
        open_by_key[key] = risk_id
    if payload.get("outcome") != Outcome.SUCCEEDED.value:
        # A run that did not finish its work cannot tell that a risk is gone.
        return
    seen = {
        str(host.get("host")) for host in payload.get("hosts") or () if host.get("status") in _SEEN
    }
    for risk in list(risks.values()):
        if (
            risk.source == "run"
            and risk.is_open
            and kind in risk.reported_by
            and risk.key not in reported
            and (risk.host is None or risk.host in seen)
        ):
            risks[risk.id] = replace(
                risk,
                state=RiskState.CLOSED,
                closed_at=entry.at,
                closed_by_run=payload.get("run_id"),
                closed_note=f"no longer reported by run {payload.get('run_id')}",
            )


def register_of(entries: Iterable[Entry], *, today: date) -> list[Risk]:
    """Given a client's entries (any kinds, oldest first) and today's date in the client's
    time zone, return its register: every risk, in the order it was opened.

    An acceptance whose date has passed leaves the risk open again, marked expired.
    """
    ordered = list(entries)
    risks: dict[str, Risk] = {}
    for entry in ordered:
        payload = entry.payload
        if entry.kind == RUN_FINISHED:
            _read_run(risks, entry)
        elif entry.kind == RISK_ADDED:
            risk_id = format_id(RISK_PREFIX, entry.seq)
            risks[risk_id] = Risk(
                id=risk_id,
                client=entry.client or "",
                title=str(payload["title"]),
                host=payload.get("host"),
                control=str(payload.get("control") or payload["title"]),
                source="added",
                opened_at=entry.at,
                impact=payload.get("impact"),
                likelihood=payload.get("likelihood"),
            )
        elif entry.kind in (RISK_ACCEPTED, RISK_CLOSED) and payload.get("risk") in risks:
            risk = risks[payload["risk"]]
            if entry.kind == RISK_CLOSED:
                risks[risk.id] = replace(
                    risk, state=RiskState.CLOSED, closed_at=entry.at, closed_note=payload["note"]
                )
                continue
            decision = latest_decision_on(ordered, risk.id, entry.seq)
            risks[risk.id] = replace(
                risk,
                state=RiskState.ACCEPTED,
                accepted_by=str(payload["by"]),
                accepted_until=date.fromisoformat(payload["until"]),
                acceptance_decision=decision.id if decision else None,
            )
    return [_expire(risk, today) for risk in risks.values()]


def _expire(risk: Risk, today: date) -> Risk:
    expired = (
        risk.state is RiskState.ACCEPTED
        and risk.accepted_until is not None
        and risk.accepted_until < today
    )
    return replace(risk, state=RiskState.OPEN, acceptance_expired=True) if expired else risk


def find_risk(register: Sequence[Risk], risk_id: str) -> Risk:
    """Given a register and a risk's id, return the risk. Raise BadInput if it is not there."""
    found = next((risk for risk in register if risk.id == risk_id), None)
    if found is None:
        raise BadInput(f"unknown risk {risk_id}")
    return found


def _rating(option: str, value: str) -> str:
    if value not in RATINGS:
        raise BadInput(f"{option} {value!r} must be one of {', '.join(RATINGS)}")
    return value


def draft_risk(
    history: Sequence[Entry],
    client: str,
    *,
    title: str,
    impact: str,
    likelihood: str,
    host: str | None,
    control: str | None,
    today: date,
) -> NewEntry:
    """Given a client's entries, the client and a risk (title, impact, likelihood, host,
    control), return the ``risk-added`` entry.

    Raise BadInput for blank text, an unknown rating, or a (host, control) pair
    already open in the register.
    """
    payload: dict[str, Any] = {
        "title": required_text("--title", title),
        "impact": _rating("--impact", impact),
        "likelihood": _rating("--likelihood", likelihood),
        "host": host,
        "control": required_text("--control", control) if control is not None else None,
    }
    if payload["control"] is not None:
        key = (host, payload["control"])
        same = [risk for risk in register_of(history, today=today) if risk.is_open]
        twin = next((risk for risk in same if risk.key == key), None)
        if twin is not None:
            raise BadInput(f"{twin.id} is already open for {host or 'the client'}: {key[1]}")
    return NewEntry(RISK_ADDED, client, payload)


def draft_acceptance(
    history: Sequence[Entry],
    risk_id: str,
    *,
    by: str,
    until: str,
    note: str | None,
    today: date,
) -> list[NewEntry]:
    """Given a client's entries, a risk, who accepts it for the client, until when
    (ISO date) and why, return the client's decision and the acceptance, to append
    together.

    Raise BadInput for an unknown or closed risk, a blank name, or a date that is
    not one or not after today.
    """
    risk = find_risk(register_of(history, today=today), risk_id)
    if not risk.is_open:
        raise BadInput(f"{risk.id} is closed: there is nothing to accept")
    try:
        limit = date.fromisoformat(until.strip())
    except ValueError:
        raise BadInput(f"--until {until!r} is not a date (YYYY-MM-DD)") from None
    if limit <= today:
        raise BadInput(f"--until {limit} must be after today ({today})")
    decision = draft_decision(
        risk.client,
        title=f"{risk.id} accepted until {limit}: {risk.title}",
        by=by,
        party="client",
        note=note if note is not None else f"residual risk accepted until {limit}",
        subject=risk.id,
    )
    acceptance = NewEntry(
        RISK_ACCEPTED,
        risk.client,
        {"risk": risk.id, "by": decision.payload["by"], "until": limit.isoformat()},
    )
    return [decision, acceptance]


def draft_closure(history: Sequence[Entry], risk_id: str, *, note: str, today: date) -> NewEntry:
    """Given a client's entries, a risk and why it is closed, return the ``risk-closed``
    entry. Raise BadInput for an unknown or closed risk, or a blank note."""
    risk = find_risk(register_of(history, today=today), risk_id)
    if not risk.is_open:
        raise BadInput(f"{risk.id} is already closed")
    return NewEntry(
        RISK_CLOSED, risk.client, {"risk": risk.id, "note": required_text("--note", note)}
    )
