"""The risk register derived from the runs' residual risks, through the pure module: one
item per (host, control) while open, closed by itself when a later successful run of a
kind that reported it no longer does, opened anew when reported after closing; a client's
acceptance lasts until its date."""

from __future__ import annotations

import re
from datetime import date

import pytest
from support.risk_entries import DB, SSH_01, TODAY, WEB, Ledger, run

from webmg_ops.errors import BadInput
from webmg_ops.runs.records import (
    HostStatus,
    Outcome,
    ResidualRisk,
)
from webmg_ops.service import risks
from webmg_ops.service.risks import RiskState, control_of


@pytest.mark.parametrize(
    ("text", "control"),
    [
        (SSH_01, "SSH-01"),
        ("SSH-01 still fails: SSH password authentication disabled", "SSH-01"),
        ("drift: SYS-03 IP forwarding disabled", "SYS-03"),
        ("3 security update(s) pending", "# security update(s) pending"),
        ("/var is 93% full", "/var is #% full"),
        ("a reboot is pending", "a reboot is pending"),
    ],
)
def test_the_control_of_a_residual_risk(text: str, control: str) -> None:
    """A hardening risk is its control; another is its text with the numbers blanked."""
    assert control_of(text) == control


def test_a_risk_reported_again_is_one_item_per_host_and_control() -> None:
    ledger = Ledger()
    (first,) = ledger.add(
        run(
            1,
            "harden",
            [
                ResidualRisk(WEB, "compliance not checked", "timeout"),
                ResidualRisk(WEB, SSH_01, "sshd_config is read-only"),
                ResidualRisk(DB, SSH_01, "sshd_config is read-only"),
            ],
        )
    )
    ledger.add(
        run(
            2,
            "harden",
            [
                ResidualRisk(WEB, "SSH-01 still fails: SSH password authentication disabled", "x"),
                ResidualRisk(DB, SSH_01, "y"),
                ResidualRisk(WEB, "compliance not checked", "timeout"),
            ],
        )
    )
    register = ledger.register()
    # Named by the first run that reported each, and its place in that run's list.
    assert sorted(register) == [f"RSK-{first.seq}.1", f"RSK-{first.seq}.2", f"RSK-{first.seq}.3"]
    web_ssh = register[f"RSK-{first.seq}.2"]
    assert (web_ssh.host, web_ssh.control, web_ssh.source) == (WEB, "SSH-01", "run")
    assert (web_ssh.last_run, web_ssh.reason, web_ssh.state) == ("run-2", "x", RiskState.OPEN)
    assert register[f"RSK-{first.seq}.3"].host == DB


def test_numbers_in_a_risk_do_not_make_it_a_new_one() -> None:
    ledger = Ledger()
    ledger.add(run(1, "check", [ResidualRisk(WEB, "3 security update(s) pending", "openssl")]))
    ledger.add(run(2, "check", [ResidualRisk(WEB, "5 security update(s) pending", "openssl")]))
    (only,) = ledger.register().values()
    assert (only.title, only.last_run) == ("3 security update(s) pending", "run-2")


def test_a_risk_closes_when_a_later_run_of_its_kind_succeeds_without_it() -> None:
    """Only a succeeded run of the same action and dry-run flag that saw the host tells
    that the risk is gone; anything else leaves it open."""
    ledger = Ledger()
    (first,) = ledger.add(
        run(
            1,
            "harden",
            [ResidualRisk(WEB, SSH_01, "r"), ResidualRisk(None, "repository not checked", "r")],
        )
    )
    web_ssh, client_wide = f"RSK-{first.seq}.1", f"RSK-{first.seq}.2"
    ledger.add(
        # Another action, a dry run of the same action, a failed run, a run that did not
        # reach the host: none of them reports the risk, none may close it.
        run(2, "check", []),
        run(3, "harden", [], check=True),
        run(4, "harden", [], outcome=Outcome.FAILED),
        run(5, "harden", [], statuses={WEB: HostStatus.UNREACHABLE, DB: HostStatus.OK}),
    )
    register = ledger.register()
    assert register[web_ssh].state is RiskState.OPEN
    # The client-wide risk was not reported by the successful run 5: it is gone.
    assert (register[client_wide].state, register[client_wide].closed_by_run) == (
        RiskState.CLOSED,
        "run-5",
    )
    (closing,) = ledger.add(run(6, "harden", [ResidualRisk(DB, SSH_01, "r")]))
    closed = ledger.register()[web_ssh]
    assert (closed.state, closed.closed_by_run, closed.closed_at) == (
        RiskState.CLOSED,
        "run-6",
        closing.at,
    )
    # Reported again after closing: a new item, named by the run that reported it.
    (again,) = ledger.add(run(7, "harden", [ResidualRisk(WEB, SSH_01, "back")]))
    register = ledger.register()
    assert register[web_ssh].state is RiskState.CLOSED
    assert register[f"RSK-{again.seq}.1"].state is RiskState.OPEN


def test_an_acceptance_lasts_until_its_date_and_is_the_clients_decision() -> None:
    ledger = Ledger()
    (first,) = ledger.add(run(1, "check", [ResidualRisk(WEB, "a reboot is pending", "kernel")]))
    risk_id = f"RSK-{first.seq}.1"
    decision, acceptance = ledger.add(
        *risks.draft_acceptance(
            ledger.entries, risk_id, by="Anna Gruber", until="2026-06-30", note=None, today=TODAY
        )
    )
    assert decision.payload == {
        "title": f"{risk_id} accepted until 2026-06-30: a reboot is pending",
        "by": "Anna Gruber",
        "party": "client",
        "note": "residual risk accepted until 2026-06-30",
        "subject": risk_id,
    }
    assert acceptance.payload == {"risk": risk_id, "by": "Anna Gruber", "until": "2026-06-30"}
    on_the_day = ledger.register(today=date(2026, 6, 30))[risk_id]
    assert (on_the_day.state, on_the_day.acceptance_decision) == (
        RiskState.ACCEPTED,
        f"DEC-{decision.seq}",
    )
    after = ledger.register(today=date(2026, 7, 1))[risk_id]
    assert (after.state, after.acceptance_expired) == (RiskState.OPEN, True)
    # An accepted risk still closes by itself once gone.
    ledger.add(run(2, "check", []))
    assert ledger.register()[risk_id].state is RiskState.CLOSED


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2026-05-06", "--until 2026-05-06 must be after today (2026-05-06)"),
        ("2026-02-30", "--until '2026-02-30' is not a date"),
        ("next week", "--until 'next week' is not a date"),
    ],
)
def test_a_bad_acceptance_date_is_bad_input(until: str, message: str) -> None:
    ledger = Ledger()
    (first,) = ledger.add(run(1, "check", [ResidualRisk(WEB, "a reboot is pending", "k")]))
    with pytest.raises(BadInput, match=re.escape(message)):
        risks.draft_acceptance(
            ledger.entries, f"RSK-{first.seq}.1", by="A", until=until, note=None, today=TODAY
        )


def test_a_closed_risk_cannot_be_accepted_or_closed_again() -> None:
    ledger = Ledger()
    (added,) = ledger.add(
        risks.draft_risk(
            [],
            "alpenhof",
            title="Old PHP on the booking site",
            impact="high",
            likelihood="medium",
            host=WEB,
            control="PHP-EOL",
            today=TODAY,
        )
    )
    risk_id = f"RSK-{added.seq}"
    with pytest.raises(BadInput, match=f"{risk_id} is already open for {WEB}: PHP-EOL"):
        risks.draft_risk(
            ledger.entries,
            "alpenhof",
            title="again",
            impact="low",
            likelihood="low",
            host=WEB,
            control="PHP-EOL",
            today=TODAY,
        )
    ledger.add(risks.draft_closure(ledger.entries, risk_id, note="PHP 8.3 deployed", today=TODAY))
    with pytest.raises(BadInput, match="already closed"):
        risks.draft_closure(ledger.entries, risk_id, note="again", today=TODAY)
    with pytest.raises(BadInput, match="is closed: there is nothing to accept"):
        risks.draft_acceptance(
            ledger.entries, risk_id, by="A", until="2027-01-01", note=None, today=TODAY
        )
    with pytest.raises(BadInput, match="unknown risk RSK-99"):
        risks.draft_closure(ledger.entries, "RSK-99", note="n", today=TODAY)
