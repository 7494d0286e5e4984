"""The risk register's rules in detail, through the pure module: the whole document a risk
shows (``risk list --json``), what a later report refreshes and what it keeps, the note
of a risk closed by a run, the exact messages of bad input, and the client's decision
drafted with an acceptance. Every expected value is written out by hand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from support.risk_entries import DB, SSH_01, T0, TODAY, WEB, Ledger, run

from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.runs.records import (
    RUN_FINISHED,
    ResidualRisk,
)
from webmg_ops.service import risks


def at(hours: int) -> str:
    """Return, as the document shows it, the instant of the entry stored ``hours`` after T0."""
    return (T0 + timedelta(hours=hours)).isoformat()


def empty_document(**fields: Any) -> dict[str, Any]:
    """Return a risk's document: no rating, reason, report, acceptance nor closure, then
    the fields given."""
    document: dict[str, Any] = {
        "impact": None,
        "likelihood": None,
        "reason": "",
        "state": "open",
        "reported_by": [],
        "last_run": None,
        "last_reported_at": None,
        "accepted_by": None,
        "accepted_until": None,
        "acceptance_decision": None,
        "acceptance_expired": False,
        "closed_at": None,
        "closed_note": None,
        "closed_by_run": None,
    }
    document.update(fields)
    return document


def test_a_risk_reported_again_shows_its_first_report_and_its_last() -> None:
    """Opened by run 1 (seq 1); run 2 (seq 2) reports it again with another text and
    reason, then a new risk on the database host, then the same new risk once more."""
    ledger = Ledger()
    ledger.add(run(1, "harden", [ResidualRisk(WEB, SSH_01, "sshd_config is read-only")]))
    ledger.add(
        run(
            2,
            "harden",
            [
                ResidualRisk(WEB, "SSH-01 still fails: SSH password authentication disabled", "ro"),
                ResidualRisk(DB, "3 security update(s) pending", "openssl"),
                ResidualRisk(DB, "4 security update(s) pending", "openssl, libc"),
            ],
        )
    )
    harden = [{"action": "harden", "check": False}]
    assert ledger.documents() == {
        "RSK-1.1": empty_document(
            id="RSK-1.1",
            client="alpenhof",
            title=SSH_01,
            host=WEB,
            control="SSH-01",
            source="run",
            opened_at=at(0),
            reason="ro",
            reported_by=harden,
            last_run="run-2",
            last_reported_at=at(1),
        ),
        # The same (host, control) twice in one run is one item, holding the last reason.
        "RSK-2.2": empty_document(
            id="RSK-2.2",
            client="alpenhof",
            title="3 security update(s) pending",
            host=DB,
            control="# security update(s) pending",
            source="run",
            opened_at=at(1),
            reason="openssl, libc",
            reported_by=harden,
            last_run="run-2",
            last_reported_at=at(1),
        ),
    }


def test_a_risk_reported_by_two_kinds_of_run_lists_both_once() -> None:
    ledger = Ledger()
    ledger.add(
        run(1, "check", [ResidualRisk(WEB, "a reboot is pending", "kernel")]),
        run(2, "update", [ResidualRisk(WEB, "a reboot is pending", "libc")]),
        run(3, "check", [ResidualRisk(WEB, "a reboot is pending", "kernel and libc")]),
    )
    (document,) = ledger.documents().values()
    assert (document["reported_by"], document["last_run"], document["reason"]) == (
        [{"action": "check", "check": False}, {"action": "update", "check": False}],
        "run-3",
        "kernel and libc",
    )


def test_a_residual_risk_recorded_without_a_reason_has_none_and_keeps_the_last_one() -> None:
    ledger = Ledger()
    first = dict(run(1, "check", [ResidualRisk(WEB, "a reboot is pending", "")]).payload)
    del first["residual_risks"][0]["reason"]
    ledger.add(NewEntry(RUN_FINISHED, "alpenhof", first))
    assert ledger.documents()["RSK-1.1"]["reason"] == ""
    ledger.add(run(2, "check", [ResidualRisk(WEB, "a reboot is pending", "kernel")]))
    third = dict(run(3, "check", [ResidualRisk(WEB, "a reboot is pending", "")]).payload)
    del third["residual_risks"][0]["reason"]
    ledger.add(NewEntry(RUN_FINISHED, "alpenhof", third))
    document = ledger.documents()["RSK-1.1"]
    assert (document["reason"], document["last_run"]) == ("kernel", "run-3")


def test_a_risk_closed_by_a_run_names_the_run_in_its_note() -> None:
    ledger = Ledger()
    ledger.add(run(7, "check", [ResidualRisk(WEB, "clock not synchronised", "chrony")]))
    ledger.add(run(8, "check", []))
    assert ledger.documents() == {
        "RSK-1.1": empty_document(
            id="RSK-1.1",
            client="alpenhof",
            title="clock not synchronised",
            host=WEB,
            control="clock not synchronised",
            source="run",
            opened_at=at(0),
            reason="chrony",
            state="closed",
            reported_by=[{"action": "check", "check": False}],
            last_run="run-7",
            last_reported_at=at(0),
            closed_at=at(1),
            closed_note="no longer reported by run run-8",
            closed_by_run="run-8",
        )
    }


def draft(
    history: Sequence[Entry],
    *,
    title: str = "Booking plug-in unmaintained",
    impact: str = "high",
    likelihood: str = "medium",
    host: str | None = None,
    control: str | None = None,
    today: date = TODAY,
) -> NewEntry:
    return risks.draft_risk(
        history,
        "alpenhof",
        title=title,
        impact=impact,
        likelihood=likelihood,
        host=host,
        control=control,
        today=today,
    )


def test_a_risk_added_by_hand_is_accepted_then_closed_with_its_whole_document() -> None:
    """Added without a control: its title is its control. Accepted (decision seq 2,
    acceptance seq 3), closed (seq 4), and a later risk added (seq 5) still counts."""
    ledger = Ledger()
    (added,) = ledger.add(draft([]))
    assert (added.kind, added.client, added.payload) == (
        "risk-added",
        "alpenhof",
        {
            "title": "Booking plug-in unmaintained",
            "impact": "high",
            "likelihood": "medium",
            "host": None,
            "control": None,
        },
    )
    by_hand = {
        "id": "RSK-1",
        "client": "alpenhof",
        "title": "Booking plug-in unmaintained",
        "host": None,
        "control": "Booking plug-in unmaintained",
        "source": "added",
        "opened_at": at(0),
        "impact": "high",
        "likelihood": "medium",
    }
    assert ledger.documents() == {"RSK-1": empty_document(**by_hand)}
    ledger.add(
        *risks.draft_acceptance(
            ledger.entries, "RSK-1", by="Anna Gruber", until="2026-09-30", note=None, today=TODAY
        )
    )
    accepted = {
        "state": "accepted",
        "accepted_by": "Anna Gruber",
        "accepted_until": "2026-09-30",
        "acceptance_decision": "DEC-2",
    }
    assert ledger.documents() == {"RSK-1": empty_document(**by_hand, **accepted)}
    ledger.add(risks.draft_closure(ledger.entries, "RSK-1", note="plug-in replaced", today=TODAY))
    ledger.add(draft(ledger.entries, title="No staging site", impact="low", likelihood="low"))
    assert ledger.documents() == {
        "RSK-1": empty_document(
            **by_hand,
            **{**accepted, "state": "closed"},
            closed_at=at(3),
            closed_note="plug-in replaced",
        ),
        "RSK-5": empty_document(
            id="RSK-5",
            client="alpenhof",
            title="No staging site",
            host=None,
            control="No staging site",
            source="added",
            opened_at=at(4),
            impact="low",
            likelihood="low",
        ),
    }


def test_an_acceptance_or_closure_of_a_risk_the_entries_do_not_hold_is_ignored() -> None:
    ledger = Ledger()
    ledger.add(draft([], host=WEB, control="PLUGIN-EOL"))
    ledger.add(
        NewEntry(
            risks.RISK_ACCEPTED, "alpenhof", {"risk": "RSK-9", "by": "A", "until": "2027-01-01"}
        ),
        NewEntry(risks.RISK_CLOSED, "alpenhof", {"risk": "RSK-9.1", "note": "gone"}),
    )
    (only,) = risks.register_of(ledger.entries, today=TODAY)
    assert (only.id, only.state, only.closed_note) == ("RSK-1", risks.RiskState.OPEN, None)


def test_an_acceptance_with_no_decision_recorded_before_it_names_none() -> None:
    ledger = Ledger()
    ledger.add(draft([]))
    ledger.add(
        NewEntry(
            risks.RISK_ACCEPTED, "alpenhof", {"risk": "RSK-1", "by": "A", "until": "2027-01-01"}
        )
    )
    (only,) = risks.register_of(ledger.entries, today=TODAY)
    assert (only.state, only.accepted_by, only.acceptance_decision) == (
        risks.RiskState.ACCEPTED,
        "A",
        None,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"impact": "huge"}, "--impact 'huge' must be one of low, medium, high"),
        ({"likelihood": "often"}, "--likelihood 'often' must be one of low, medium, high"),
        ({"impact": "High"}, "--impact 'High' must be one of low, medium, high"),
        ({"control": " "}, "--control is empty"),
        ({"title": ""}, "--title is empty"),
    ],
)
def test_bad_text_or_rating_is_refused_with_the_option_named(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(BadInput) as refused:
        draft([], **fields)
    assert str(refused.value) == message


def test_a_twin_of_an_open_risk_is_refused_for_its_host_or_the_client() -> None:
    ledger = Ledger()
    ledger.add(draft([], control="PCI-SCOPE"), draft([], host=WEB, control="PHP-EOL"))
    with pytest.raises(BadInput) as client_wide:
        draft(ledger.entries, title="again", control="PCI-SCOPE")
    assert str(client_wide.value) == "RSK-1 is already open for the client: PCI-SCOPE"
    with pytest.raises(BadInput) as on_host:
        draft(ledger.entries, title="again", host=WEB, control=" PHP-EOL ")
    assert str(on_host.value) == f"RSK-2 is already open for {WEB}: PHP-EOL"
    # The same control on another host is another risk.
    assert draft(ledger.entries, host=DB, control="PHP-EOL").payload["control"] == "PHP-EOL"


def test_an_accepted_risk_is_still_open_its_acceptance_can_be_extended() -> None:
    """Accepted until 2026-06-30 (decision seq 2, acceptance seq 3): its twin is refused
    before and after that date, and a new acceptance is drafted for the client with the
    note given."""
    ledger = Ledger()
    ledger.add(draft([], host=WEB, control="PHP-EOL"))
    ledger.add(
        *risks.draft_acceptance(
            ledger.entries, "RSK-1", by="Anna Gruber", until="2026-06-30", note=None, today=TODAY
        )
    )
    for today in (TODAY, date(2026, 7, 1)):
        with pytest.raises(BadInput) as refused:
            draft(ledger.entries, host=WEB, control="PHP-EOL", today=today)
        assert str(refused.value) == f"RSK-1 is already open for {WEB}: PHP-EOL"
    decision, acceptance = risks.draft_acceptance(
        ledger.entries,
        "RSK-1",
        by=" Lukas Berger ",
        until="2026-12-31",
        note="PHP 8.3 needs the new booking plug-in, due in December",
        today=date(2026, 7, 1),
    )
    assert (decision.kind, decision.client, decision.payload) == (
        "decision-recorded",
        "alpenhof",
        {
            "title": "RSK-1 accepted until 2026-12-31: Booking plug-in unmaintained",
            "by": "Lukas Berger",
            "party": "client",
            "note": "PHP 8.3 needs the new booking plug-in, due in December",
            "subject": "RSK-1",
        },
    )
    assert (acceptance.kind, acceptance.client, acceptance.payload) == (
        "risk-accepted",
        "alpenhof",
        {"risk": "RSK-1", "by": "Lukas Berger", "until": "2026-12-31"},
    )
