"""The monitor's incident decisions, pure: one open incident per check, opened with
impact availability and the check's criticality; a recovery stops the restore clock
once, in triage as in mitigation, and the steps that follow stay in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.service import EntryList

from webmg_ops.config.clients import Client, load_client
from webmg_ops.config.contract import HealthCheck
from webmg_ops.errors import BadInput
from webmg_ops.ledger import NewEntry
from webmg_ops.service.detection import decide_detected_open, decide_recovery
from webmg_ops.service.incidents import (
    CLOSED,
    FIX,
    MITIGATION,
    TRIAGE,
    clock_statuses,
    decide_step,
    fold_incidents,
    rules_for,
)

OPENED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def riverton(inventories: Path) -> Client:
    """Return riverton as the test inventories declare it (institutional-sla, 24/7)."""
    return load_client(inventories, "riverton")


def portal(client: Client, name: str = "citizen portal (node 1)") -> HealthCheck:
    """Return one of the client's checks, declared critical."""
    check = next(item for item in client.contract.health_checks if item.name == name)
    return check.model_copy(update={"criticality": "critical"})


def open_one(entries: EntryList, client: Client, check: HealthCheck) -> int:
    """Open the check's incident at OPENED_AT; return its seq."""
    (draft,) = decide_detected_open(
        client,
        check,
        entries.entries,
        failures=3,
        cause="refused",
        since=OPENED_AT - timedelta(minutes=2),
        now=OPENED_AT,
    )
    return int(entries.add(draft).seq)


def test_an_incident_opens_once_per_check(riverton: Client) -> None:
    entries = EntryList()
    check = portal(riverton)
    seq = open_one(entries, riverton, check)
    opening = entries.entries[0]
    assert opening.payload["impact"] == "availability"
    assert opening.payload["criticality"] == "critical"
    assert opening.payload["severity"] == rules_for(riverton).severity("availability", "critical")
    assert opening.payload["check"] == check.name
    assert opening.payload["detected_by"] == "monitor" and opening.actor == "monitor"
    again = decide_detected_open(
        riverton,
        check,
        entries.entries,
        failures=4,
        cause="refused",
        since=OPENED_AT,
        now=OPENED_AT + timedelta(minutes=1),
    )
    assert again == []
    # Another check of the same client has its own incident.
    other = portal(riverton, "citizen portal (node 2)")
    assert (
        len(
            decide_detected_open(
                riverton,
                other,
                entries.entries,
                failures=3,
                cause="timeout",
                since=OPENED_AT,
                now=OPENED_AT,
            )
        )
        == 1
    )
    # Once closed, the check's next outage is a new incident.
    rules = rules_for(riverton)
    entries.add(decide_recovery(riverton, check, entries.entries, now=OPENED_AT)[0])
    for command, note in (("ack", None), ("fix", "done")):
        incident = fold_incidents(entries.entries)[seq]
        entries.add(decide_step(rules, incident, command, note=note, by="ana", now=OPENED_AT))
    # (A P1 closes after its post-mortem: the closing entry is what the fold reads.)
    entries.add(NewEntry(CLOSED, riverton.name, {"incident": seq, "note": "x"}, at=OPENED_AT))
    assert not fold_incidents(entries.entries)[seq].is_open
    reopened = decide_detected_open(
        riverton,
        check,
        entries.entries,
        failures=3,
        cause="refused",
        since=OPENED_AT,
        now=OPENED_AT + timedelta(hours=1),
    )
    assert len(reopened) == 1


def test_a_recovery_in_triage_stops_the_restore_clock_and_the_ack_leads_to_the_fix(
    riverton: Client,
) -> None:
    entries = EntryList()
    check = portal(riverton)
    seq = open_one(entries, riverton, check)
    recovered_at = OPENED_AT + timedelta(minutes=7)
    (recovery,) = decide_recovery(riverton, check, entries.entries, now=recovered_at)
    entries.add(recovery)
    assert decide_recovery(riverton, check, entries.entries, now=recovered_at) == []
    incident = fold_incidents(entries.entries)[seq]
    rules = rules_for(riverton)
    clocks = {c.name: c for c in clock_statuses(incident, rules, recovered_at + timedelta(1))}
    assert incident.state == TRIAGE
    assert clocks["restore"].stopped_at == recovered_at
    assert clocks["restore"].used == timedelta(minutes=7)  # 24/7 clocks: time to recovery
    assert clocks["response"].stopped_at is None
    entries.add(decide_step(rules, incident, "ack", note=None, by="ana", now=recovered_at))
    incident = fold_incidents(entries.entries)[seq]
    assert incident.state == FIX
    with pytest.raises(BadInput, match="out of order"):
        decide_step(rules, incident, "mitigate", note="x", by="ana", now=recovered_at)


def test_a_recovery_in_mitigation_ends_that_step(riverton: Client) -> None:
    entries = EntryList()
    check = portal(riverton)
    seq = open_one(entries, riverton, check)
    rules = rules_for(riverton)
    incident = fold_incidents(entries.entries)[seq]
    entries.add(decide_step(rules, incident, "ack", note=None, by="ana", now=OPENED_AT))
    assert fold_incidents(entries.entries)[seq].state == MITIGATION
    recovered_at = OPENED_AT + timedelta(minutes=3)
    entries.add(decide_recovery(riverton, check, entries.entries, now=recovered_at)[0])
    incident = fold_incidents(entries.entries)[seq]
    assert incident.state == FIX
    restore = next(c for c in clock_statuses(incident, rules, recovered_at) if c.name == "restore")
    assert (restore.stopped_at, restore.state) == (recovered_at, "met")
