"""Governance before a run, rule by rule: prospect, diagnostic first, window, approval.

Each expectation is the rule as the service states it, with the message a
person reads; the ledger is a real one holding what the gate reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.governance import record_diagnostic

from webmg_ops.config.clients import Client, load_client
from webmg_ops.engine.governance import (
    Clearance,
    PolicyRefusal,
    check_governance,
    list_refusals,
    rules_for,
)
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Ledger, open_ledger
from webmg_ops.runs.records import APPROVAL, RUN_FINISHED, RUN_STARTED, Refusal, RunRequest

#: alpenhof's "tuesday night" window (23:00 Vienna, 3 h): 23:30 Vienna is 22:30 UTC.
IN_ALPENHOF_WINDOW = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
#: riverton's "sunday early morning" (02:00 New York, 4 h): 03:00 New York is 08:00 UTC.
IN_RIVERTON_WINDOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
#: A Wednesday noon: outside every window of alpenhof.
WEDNESDAY_NOON = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
ANY_EMERGENCY = "--emergency --reason ..."


def _govern(
    ledger: Ledger,
    client: Client,
    action: str,
    at: datetime,
    *,
    check: bool = False,
    emergency: bool = False,
    reason: str = "",
) -> Clearance:
    return check_governance(
        client, action, check=check, emergency=emergency, reason=reason, at=at, ledger=ledger
    )


def _refused_then_overridden(
    ledger_url: str, client: Client, action: str, at: datetime
) -> tuple[PolicyRefusal, Clearance]:
    """Given a client with a diagnostic on record, return the refusal of a run of ACTION
    at AT and the clearance the same run gets as an emergency."""
    with open_ledger(ledger_url) as ledger:
        record_diagnostic(ledger, client.name)
        with pytest.raises(PolicyRefusal) as refused:
            _govern(ledger, client, action, at)
        emergency = _govern(ledger, client, action, at, emergency=True, reason="exploited flaw")
    return refused.value, emergency


def test_an_unknown_action_is_named_with_the_known_ones() -> None:
    with pytest.raises(BadInput) as refused:
        rules_for("reboot")
    assert refused.value.message == (
        "unknown action 'reboot' (known: backup, check, deploy, diagnose, drill, harden, "
        "target, update)"
    )


def test_a_prospect_may_only_be_looked_at(
    inventories: Path, ledger_url: str, edit_contract
) -> None:
    def prospect(data: dict) -> None:
        for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
            data.pop(key, None)

    edit_contract("alpenhof", prospect)
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        for action in ("check", "diagnose"):
            assert _govern(ledger, client, action, WEDNESDAY_NOON).emergency is False
        with pytest.raises(PolicyRefusal) as refused:
            _govern(ledger, client, "update", WEDNESDAY_NOON, emergency=True, reason="zero-day")
    assert refused.value.refusal is Refusal.PROSPECT
    assert refused.value.message == (
        "alpenhof is a prospect (no level in client.yml): only check, diagnose may run "
        "until a service level is contracted"
    )


def test_a_change_waits_for_a_diagnostic_of_its_own_client(
    inventories: Path, ledger_url: str
) -> None:
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        # Another client's diagnostic, and a failed one of this client, do not count.
        record_diagnostic(ledger, "riverton")
        ledger.append(
            RUN_FINISHED, "alpenhof", {"run_id": "d0", "action": "diagnose", "outcome": "failed"}
        )
        with pytest.raises(PolicyRefusal) as refused:
            _govern(ledger, client, "update", IN_ALPENHOF_WINDOW)
        assert refused.value.refusal is Refusal.DIAGNOSTIC
        assert refused.value.message == (
            "alpenhof has no diagnostic on record: run `webmg-ops diagnose alpenhof` before "
            f"changing its hosts; only an emergency may run ({ANY_EMERGENCY})"
        )
        # A dry run reads only; an emergency goes on and says what it overrode.
        assert _govern(ledger, client, "update", IN_ALPENHOF_WINDOW, check=True).overridden is None
        emergency = _govern(
            ledger, client, "update", IN_ALPENHOF_WINDOW, emergency=True, reason="zero-day"
        )
        assert (emergency.emergency, emergency.overridden) == (True, "diagnostic first")
        record_diagnostic(ledger, "alpenhof")
        cleared = _govern(ledger, client, "update", IN_ALPENHOF_WINDOW)
    assert (cleared.window, cleared.overridden, cleared.emergency) == ("tuesday night", None, False)


def test_a_system_not_stabilized_waits_for_scoping_even_after_a_diagnostic(
    inventories: Path, ledger_url: str, edit_contract
) -> None:
    """The seed: a system that is not stabilized gets a diagnostic (scoping) before any
    commitment to support, whatever diagnostics are on record; only an emergency goes on."""
    edit_contract("alpenhof", lambda data: data["fit"].update(stabilized=False))
    client = load_client(inventories, "alpenhof")
    refused, emergency = _refused_then_overridden(ledger_url, client, "harden", IN_ALPENHOF_WINDOW)
    assert refused.refusal is Refusal.DIAGNOSTIC
    assert refused.message == (
        "alpenhof is not stabilized (client.yml fit.stabilized: false): the priority is a "
        "diagnostic (scoping) before committing to support; only an emergency may run "
        f"({ANY_EMERGENCY})"
    )
    assert emergency.overridden == "diagnostic first"


def test_outside_its_windows_a_change_is_told_when_the_next_one_opens(
    inventories: Path, ledger_url: str
) -> None:
    client = load_client(inventories, "alpenhof")
    refused, overridden = _refused_then_overridden(ledger_url, client, "harden", WEDNESDAY_NOON)
    assert refused.refusal is Refusal.WINDOW
    # The next window after Wednesday noon: Thursday night, said in the client's time as
    # `due` shows it (23:00 in Vienna, one hour ahead of UTC in December), with its zone.
    assert refused.message == (
        "alpenhof is outside its maintenance windows; next window opens "
        "2026-12-03T23:00:00+01:00 (Europe/Vienna); only an emergency may run "
        f"({ANY_EMERGENCY})"
    )
    assert (overridden.window, overridden.overridden) == (None, "outside windows")


#: Tuesday 22 December 2026, 23:30 in Vienna: in alpenhof's window and in its Christmas freeze.
IN_ALPENHOF_FREEZE = datetime(2026, 12, 22, 22, 30, tzinfo=UTC)


def test_a_freeze_holds_inside_a_window_and_only_an_emergency_goes_on(
    inventories: Path, ledger_url: str
) -> None:
    client = load_client(inventories, "alpenhof")
    refused, emergency = _refused_then_overridden(ledger_url, client, "update", IN_ALPENHOF_FREEZE)
    assert refused.refusal is Refusal.FREEZE
    assert refused.message == (
        "alpenhof is in the freeze 'christmas and new year' (winter season opening and "
        f"holiday bookings); only an emergency may run ({ANY_EMERGENCY})"
    )
    assert (emergency.window, emergency.overridden) == (
        "tuesday night",
        "freeze christmas and new year",
    )


def test_with_no_opening_ahead_the_refusal_names_none(
    inventories: Path, ledger_url: str, edit_contract
) -> None:
    """A freeze over every coming window leaves no next opening to name."""

    def long_freeze(data: dict) -> None:
        data["freezes"] = [
            {
                "name": "migration",
                "start": "2026-12-03",
                "end": "2029-01-01",
                "reason": "platform move",
            }
        ]

    edit_contract("alpenhof", long_freeze)
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        record_diagnostic(ledger, "alpenhof")
        with pytest.raises(PolicyRefusal) as refused:
            _govern(ledger, client, "harden", WEDNESDAY_NOON)
    assert refused.value.message == (
        f"alpenhof is outside its maintenance windows; only an emergency may run ({ANY_EMERGENCY})"
    )


def test_an_emergency_says_everything_it_overrode_and_needs_a_reason(
    inventories: Path, ledger_url: str
) -> None:
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        overridden = _govern(
            ledger, client, "update", WEDNESDAY_NOON, emergency=True, reason="zero-day"
        )
        with pytest.raises(BadInput) as blank:
            _govern(ledger, client, "update", WEDNESDAY_NOON, emergency=True, reason="  ")
    assert overridden.overridden == "outside windows, diagnostic first"
    assert blank.value.message == "--emergency needs --reason: an emergency change must say why"


def test_a_level_without_deploys_refuses_one_even_in_an_emergency(
    inventories: Path, ledger_url: str
) -> None:
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger, pytest.raises(PolicyRefusal) as refused:
        _govern(ledger, client, "deploy", IN_ALPENHOF_WINDOW, emergency=True, reason="hotfix")
    assert refused.value.refusal is Refusal.LEVEL
    assert refused.value.message == (
        "alpenhof may not deploy: its policy does not deploy application versions "
        "(changes.deploy_allowed: no, from the level stability-security); deploys are part "
        "of continuous-evolution and institutional-sla"
    )


def test_an_approval_is_needed_once_per_run_of_its_own_client_and_action(
    inventories: Path, ledger_url: str
) -> None:
    client = load_client(inventories, "riverton")  # institutional-sla: approvals required
    with open_ledger(ledger_url) as ledger:
        record_diagnostic(ledger, "riverton")
        # Approvals of another action or another client do not open this run.
        ledger.append(APPROVAL, "riverton", {"action": "harden", "by": "CIO", "note": "ok"})
        ledger.append(APPROVAL, "alpenhof", {"action": "update", "by": "owner", "note": "ok"})
        with pytest.raises(PolicyRefusal) as refused:
            _govern(ledger, client, "update", IN_RIVERTON_WINDOW)
        assert refused.value.refusal is Refusal.APPROVAL
        assert refused.value.message == (
            "riverton's policy requires an approval for update: record one with "
            "webmg-ops approve riverton update --by NAME --note TEXT"
        )
        # A dry run needs none.
        assert (
            _govern(ledger, client, "update", IN_RIVERTON_WINDOW, check=True).approval_seq is None
        )
        approval = ledger.append(
            APPROVAL, "riverton", {"action": "update", "by": "CIO", "note": "CHG-7"}
        )
        cleared = _govern(ledger, client, "update", IN_RIVERTON_WINDOW)
        assert cleared.approval_seq == approval.seq
        # A run that started without it (a dry run) leaves it open; the run that used it
        # consumes it.
        ledger.append(RUN_STARTED, "riverton", {"run_id": "r0", "approval_seq": None})
        assert _govern(ledger, client, "update", IN_RIVERTON_WINDOW).approval_seq == approval.seq
        ledger.append(RUN_STARTED, "riverton", {"run_id": "r1", "approval_seq": approval.seq})
        with pytest.raises(PolicyRefusal):
            _govern(ledger, client, "update", IN_RIVERTON_WINDOW)


def _every_refusal(
    ledger: Ledger, client: Client, action: str, at: datetime, **flags: Any
) -> tuple[Clearance | None, tuple[PolicyRefusal, ...]]:
    request = RunRequest(client=client.name, action=action, reason="why", **flags)
    return list_refusals(client, request, at, ledger)


def test_every_reason_to_refuse_is_listed_the_one_a_run_reports_first(
    inventories: Path, ledger_url: str
) -> None:
    """Outside its window, with no diagnostic and no approval, a run of riverton's update
    is refused for three reasons; the gate reports the first of them."""
    client = load_client(inventories, "riverton")  # institutional-sla: approvals required
    with open_ledger(ledger_url) as ledger:
        clearance, refusals = _every_refusal(ledger, client, "update", WEDNESDAY_NOON)
        assert clearance is None
        assert [refused.refusal for refused in refusals] == [
            Refusal.WINDOW,
            Refusal.DIAGNOSTIC,
            Refusal.APPROVAL,
        ]
        with pytest.raises(PolicyRefusal) as first:
            _govern(ledger, client, "update", WEDNESDAY_NOON)
        assert refusals[0].message == first.value.message
        assert refusals[1].message == (
            "riverton has no diagnostic on record: run `webmg-ops diagnose riverton` before "
            f"changing its hosts; only an emergency may run ({ANY_EMERGENCY})"
        )
        assert refusals[2].message == (
            "riverton's policy requires an approval for update: record one with "
            "webmg-ops approve riverton update --by NAME --note TEXT"
        )
        # An emergency lifts the window and the diagnostic, never the approval.
        _, urgent = _every_refusal(ledger, client, "update", WEDNESDAY_NOON, emergency=True)
        assert [refused.refusal for refused in urgent] == [Refusal.APPROVAL]
        # A dry run is refused for none of them.
        dry = _every_refusal(ledger, client, "update", WEDNESDAY_NOON, check=True)
        assert dry[1] == () and dry[0] is not None


def test_a_freeze_outside_a_window_is_listed_with_the_window(
    inventories: Path, ledger_url: str
) -> None:
    """In a freeze and outside every window: both named, the freeze first as the gate says;
    in a freeze inside a window: the freeze alone."""
    client = load_client(inventories, "alpenhof")
    frozen_noon = datetime(2026, 12, 23, 11, 0, tzinfo=UTC)  # a Wednesday of the freeze
    with open_ledger(ledger_url) as ledger:
        record_diagnostic(ledger, "alpenhof")
        _, both = _every_refusal(ledger, client, "harden", frozen_noon)
        assert [refused.refusal for refused in both] == [Refusal.FREEZE, Refusal.WINDOW]
        _, frozen = _every_refusal(ledger, client, "harden", IN_ALPENHOF_FREEZE)
        assert [refused.refusal for refused in frozen] == [Refusal.FREEZE]
        cleared, none = _every_refusal(ledger, client, "harden", IN_ALPENHOF_WINDOW)
        assert none == () and cleared is not None and cleared.window == "tuesday night"


def test_a_prospect_is_listed_alone(
    inventories: Path, ledger_url: str, edit_contract: Callable[..., Path]
) -> None:
    def prospect(data: dict[str, Any]) -> None:
        for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
            data.pop(key, None)

    edit_contract("alpenhof", prospect)
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        _, refusals = _every_refusal(ledger, client, "update", WEDNESDAY_NOON)
    assert [refused.refusal for refused in refusals] == [Refusal.PROSPECT]


def test_a_level_without_deploys_is_listed_alone(inventories: Path, ledger_url: str) -> None:
    client = load_client(inventories, "alpenhof")  # stability-security: no deploys
    with open_ledger(ledger_url) as ledger:
        _, refusals = _every_refusal(ledger, client, "deploy", WEDNESDAY_NOON)
    assert [refused.refusal for refused in refusals] == [Refusal.LEVEL]


def test_a_deploy_naming_no_change_lists_the_other_refusals(
    inventories: Path, ledger_url: str
) -> None:
    """Naming no change is bad input once the rules before it pass; until then the listing
    names what refuses the run, not the missing change."""
    client = load_client(inventories, "riverton")
    with open_ledger(ledger_url) as ledger:
        _, refusals = _every_refusal(ledger, client, "deploy", WEDNESDAY_NOON)
    assert [refused.refusal for refused in refusals] == [Refusal.WINDOW, Refusal.DIAGNOSTIC]
