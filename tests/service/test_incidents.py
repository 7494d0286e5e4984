"""The incident state machine and its SLA clocks, driven with an injected clock.

Entries are made here as the ledger would store them (no database: the module under
test is pure), so that each test decides the instant of every step. The clients'
rules come from the demo contracts: alpenhof (stability-security, Vienna, business
hours) and riverton (institutional-sla, New York, 24/7, response P1 tightened to 20m).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.service import EntryList, rules

from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.service import incidents
from webmg_ops.service.incidents import (
    BREACHED,
    MET,
    PAUSED,
    RUNNING,
    ClockStatus,
    Incident,
    IncidentRules,
    clock_statuses,
    find_incident,
    parse_id,
    parse_postmortem,
    rules_for,
)

# A fixture of the service tests.
__all__ = ["rules"]

VIENNA = ZoneInfo("Europe/Vienna")
# Monday 30 November 2026, 09:00 in Vienna (08:00 UTC): a business day for alpenhof.
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=VIENNA)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

POSTMORTEM = """# Post-mortem: booking site down

## Summary
The booking site answered 502 for 40 minutes.

## Timeline
- 09:00 alert
- 09:40 restored

## Root cause
A full disk on the database host.

## What went well
The alert fired at once.

## Actions
- Alert at 80 % disk use
* Rotate the slow-query log daily
1. Add the disk check to the drill
"""


class Story:
    """One incident told step by step, each step at an instant the test chooses."""

    def __init__(self, rules: IncidentRules, ledger: EntryList, seq: int) -> None:
        self.rules = rules
        self.ledger = ledger
        self.seq = seq

    @property
    def incident(self) -> Incident:
        return find_incident(self.ledger.entries, self.seq)

    def step(self, command: str, at: datetime, note: str | None = "done", by: str = "ana") -> Entry:
        return self.ledger.add(
            incidents.decide_step(self.rules, self.incident, command, note=note, by=by, now=at)
        )

    def wait(self, at: datetime) -> Entry:
        return self.ledger.add(
            incidents.decide_wait(self.incident, on="client", note="logs asked", by="ana", now=at)
        )

    def resume(self, at: datetime) -> Entry:
        return self.ledger.add(incidents.decide_resume(self.incident, note="", by="ana", now=at))

    def postmortem(self, at: datetime, text: str = POSTMORTEM) -> Entry:
        return self.ledger.add(
            incidents.decide_postmortem(self.incident, text=text, name="pm.md", by="ana", now=at)
        )

    def clocks(self, now: datetime) -> dict[str, ClockStatus]:
        return {status.name: status for status in clock_statuses(self.incident, self.rules, now)}


def open_story(
    rules: IncidentRules,
    at: datetime = MONDAY_9,
    impact: str = "availability",
    criticality: str = "critical",
    host: str | None = None,
) -> Story:
    ledger = EntryList()
    opened = ledger.add(
        incidents.decide_open(
            rules,
            title="booking site down",
            impact=impact,
            criticality=criticality,
            host=host,
            reported_by="front desk",
            ticket="T-1",
            by="ana",
            now=at,
        )
    )
    return Story(rules, ledger, opened.seq)


# --- severity ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "impact", "criticality", "severity"),
    [
        ("alpenhof", "availability", "critical", "P1"),
        ("alpenhof", "security", "major", "P2"),
        ("alpenhof", "data", "minor", "P3"),
        ("riverton", "security", "major", "P1"),
        ("riverton", "data", "major", "P1"),
        ("riverton", "operations", "major", "P2"),
        ("riverton", "availability", "minor", "P3"),
    ],
)
def test_severity_is_computed_from_impact_and_criticality_by_the_policy(
    rules: Callable[[str], IncidentRules], client: str, impact: str, criticality: str, severity: str
) -> None:
    """An incident's severity is the policy's table cell for its impact and criticality."""
    story = open_story(rules(client), impact=impact, criticality=criticality)
    assert story.incident.severity == severity
    assert story.ledger.entries[0].payload["severity"] == severity


def test_a_contracts_raised_severity_is_used(
    inventories: Path, edit_contract: Callable[..., Path]
) -> None:
    edit_contract(
        "alpenhof", lambda data: data.update(incidents={"severity": {"data": {"minor": "P2"}}})
    )
    story = open_story(
        rules_for(load_client(inventories, "alpenhof")), impact="data", criticality="minor"
    )
    assert story.incident.severity == "P2"


def test_an_incident_records_what_was_reported(rules: Callable[[str], IncidentRules]) -> None:
    story = open_story(rules("alpenhof"), host="alpenhof-web1")
    (opened,) = story.ledger.entries
    assert (opened.kind, opened.client, opened.actor) == ("incident-opened", "alpenhof", "ana")
    assert opened.payload == {
        "title": "booking site down",
        "impact": "availability",
        "criticality": "critical",
        "severity": "P1",
        "host": "alpenhof-web1",
        "reported_by": "front desk",
        "ticket": "T-1",
    }
    assert story.incident.id == f"INC-{opened.seq}"
    assert story.incident.state == "triage"


#: A valid opening of an incident, as keyword arguments; a test changes what it tries.
OPEN_ARGUMENTS: dict[str, Any] = {
    "title": "down",
    "impact": "availability",
    "criticality": "major",
    "host": None,
    "reported_by": None,
    "ticket": None,
    "by": None,
    "now": MONDAY_9,
}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": "riverton-web1"}, "alpenhof has no host 'riverton-web1' in its inventory"),
        ({"title": "  "}, "--title is missing or empty"),
        ({"impact": "reputation"}, "impact 'reputation' is not one of"),
        ({"criticality": "severe"}, "criticality 'severe' is not one of"),
    ],
)
def test_an_incident_with_bad_fields_is_refused(
    rules: Callable[[str], IncidentRules], fields: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {**OPEN_ARGUMENTS, **fields}
    with pytest.raises(BadInput, match=message):
        incidents.decide_open(rules("alpenhof"), **arguments)


# --- the state machine -------------------------------------------------------


def test_the_full_path_from_triage_to_closed(rules: Callable[[str], IncidentRules]) -> None:
    """ack, mitigate, fix, post-mortem and close take an incident from triage to closed."""
    story = open_story(rules("alpenhof"))
    states = [story.incident.state]
    for offset, command in enumerate(("ack", "mitigate", "fix"), start=1):
        story.step(command, MONDAY_9 + offset * 10 * MINUTE)
        states.append(story.incident.state)
    story.postmortem(MONDAY_9 + HOUR)
    story.step("close", MONDAY_9 + 2 * HOUR)
    states.append(story.incident.state)
    assert states == ["triage", "mitigation", "fix", "resolved", "closed"]
    kinds = [entry.kind for entry in story.ledger.entries]
    assert kinds == [
        "incident-opened",
        "incident-acknowledged",
        "incident-mitigated",
        "incident-fixed",
        "incident-postmortem",
        "incident-closed",
    ]
    assert all(entry.payload["incident"] == story.seq for entry in story.ledger.entries[1:])
    assert [event.kind for event in story.incident.timeline] == kinds
    assert not story.incident.is_open


#: The state each step leads to, and the commands valid in each state.
VALID = {"triage": "ack", "mitigation": "mitigate", "fix": "fix", "resolved": "close"}
PATH = ["triage", "mitigation", "fix", "resolved", "closed"]


def story_in(rules: IncidentRules, state: str) -> Story:
    story = open_story(rules, criticality="minor")  # a P3: closes without a post-mortem
    at = MONDAY_9
    for current in PATH[: PATH.index(state)]:
        at += MINUTE
        story.step(VALID[current], at)
    assert story.incident.state == state
    return story


@pytest.mark.parametrize(
    ("state", "command"),
    [
        (state, command)
        for state in PATH
        for command in ("ack", "mitigate", "fix", "close")
        if VALID.get(state) != command
    ],
)
def test_a_step_out_of_order_is_refused_with_the_reason(
    rules: Callable[[str], IncidentRules], state: str, command: str
) -> None:
    """Every step taken in a state it does not apply to is refused with the reason."""
    story = story_in(rules("alpenhof"), state)
    before = list(story.ledger.entries)
    with pytest.raises(BadInput) as refused:
        story.step(command, MONDAY_9 + HOUR)
    if state == "closed":
        assert "is closed: nothing more can be done" in refused.value.message
    else:
        assert f"is in {state}: '{command}' is out of order" in refused.value.message
        assert f"next is 'incident {VALID[state]} INC-" in refused.value.message
    assert story.ledger.entries == before


@pytest.mark.parametrize("command", ["mitigate", "fix", "close"])
def test_a_step_needs_a_note_but_an_acknowledgement_does_not(
    rules: Callable[[str], IncidentRules], command: str
) -> None:
    state = {value: key for key, value in VALID.items()}[command]
    story = story_in(rules("alpenhof"), state)
    with pytest.raises(BadInput, match="--note is missing or empty"):
        story.step(command, MONDAY_9 + HOUR, note=" ")
    fresh = open_story(rules("alpenhof"))
    assert fresh.step("ack", MONDAY_9 + MINUTE, note=None).payload["note"] == ""


def test_a_step_recorded_twice_by_a_race_moves_the_state_once(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"))
    incident = story.incident
    # Two operators acknowledge at once: both decisions saw the incident in triage.
    first = incidents.decide_step(story.rules, incident, "ack", note="", by="ana", now=MONDAY_9)
    second = incidents.decide_step(
        story.rules, incident, "ack", note="", by="ben", now=MONDAY_9 + MINUTE
    )
    story.ledger.add(first)
    story.ledger.add(second)
    assert story.incident.state == "mitigation"
    assert story.incident.stopped["incident-acknowledged"] == MONDAY_9.astimezone(UTC)
    assert len(story.incident.timeline) == 3


def test_a_p1_is_not_closed_without_a_post_mortem(rules: Callable[[str], IncidentRules]) -> None:
    """Closing a P1 without a post-mortem is refused by policy."""
    story = open_story(rules("alpenhof"))  # P1
    for offset, command in enumerate(("ack", "mitigate", "fix"), start=1):
        story.step(command, MONDAY_9 + offset * MINUTE)
    with pytest.raises(Refused, match="is P1: the stability-security policy needs a post-mortem"):
        story.step("close", MONDAY_9 + HOUR)
    assert story.incident.state == "resolved"
    story.postmortem(MONDAY_9 + HOUR)
    story.step("close", MONDAY_9 + 2 * HOUR)
    assert story.incident.state == "closed"


def test_a_p2_needs_a_post_mortem_where_the_policy_says_so(
    rules: Callable[[str], IncidentRules],
) -> None:
    # riverton (institutional-sla) asks one for a P2; alpenhof does not.
    for client, refused in (("riverton", True), ("alpenhof", False)):
        story = open_story(rules(client), impact="availability", criticality="major")
        assert story.incident.severity == "P2"
        for offset, command in enumerate(("ack", "mitigate", "fix"), start=1):
            story.step(command, MONDAY_9 + offset * MINUTE)
        if refused:
            with pytest.raises(Refused):
                story.step("close", MONDAY_9 + HOUR)
        else:
            story.step("close", MONDAY_9 + HOUR)
            assert story.incident.state == "closed"


def test_waiting_on_the_client_blocks_steps_until_resumed(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"))
    story.wait(MONDAY_9 + 10 * MINUTE)
    assert story.incident.waiting_since is not None
    with pytest.raises(BadInput, match=r"waits on the client since .*'incident resume INC-"):
        story.step("ack", MONDAY_9 + 20 * MINUTE)
    with pytest.raises(BadInput, match="already waits on the client"):
        story.wait(MONDAY_9 + 20 * MINUTE)
    story.resume(MONDAY_9 + 30 * MINUTE)
    with pytest.raises(BadInput, match="is not waiting on anyone"):
        story.resume(MONDAY_9 + 40 * MINUTE)
    story.step("ack", MONDAY_9 + 40 * MINUTE)
    assert story.incident.state == "mitigation"


def test_an_incident_waits_only_on_the_client_with_a_note_and_before_its_fix(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = story_in(rules("alpenhof"), "triage")
    with pytest.raises(BadInput, match="can wait on client only"):
        incidents.decide_wait(story.incident, on="vendor", note="x", by=None, now=MONDAY_9)
    with pytest.raises(BadInput, match="--note is missing or empty"):
        incidents.decide_wait(story.incident, on="client", note="", by=None, now=MONDAY_9)
    fixed = story_in(rules("alpenhof"), "resolved")
    with pytest.raises(BadInput, match="is resolved: its clocks no longer run"):
        fixed.wait(MONDAY_9 + HOUR)


def test_severity_may_be_raised_freely_and_lowered_only_with_a_reason(
    rules: Callable[[str], IncidentRules],
) -> None:
    """Raising is free; lowering is a recorded decision with its reason."""
    story = open_story(rules("alpenhof"), criticality="minor")
    assert story.incident.severity == "P3"
    raised = story.ledger.add(
        incidents.decide_raise(story.incident, to="p1", note="spreading", by="ana", now=MONDAY_9)
    )
    assert raised.payload == {"incident": story.seq, "from": "P3", "to": "P1", "note": "spreading"}
    assert story.incident.severity == "P1"
    with pytest.raises(BadInput, match="P2 is not more urgent"):
        incidents.decide_raise(story.incident, to="P2", note=None, by=None, now=MONDAY_9)
    with pytest.raises(BadInput, match="--reason is missing or empty"):
        incidents.decide_lower(story.incident, to="P2", reason=" ", by=None, now=MONDAY_9)
    with pytest.raises(BadInput, match="P1 is not less urgent"):
        incidents.decide_lower(story.incident, to="P1", reason="x", by=None, now=MONDAY_9)
    with pytest.raises(BadInput, match="severity 'P4' is not one of P1, P2, P3"):
        incidents.decide_lower(story.incident, to="P4", reason="x", by=None, now=MONDAY_9)
    lowered = story.ledger.add(
        incidents.decide_lower(
            story.incident, to="P2", reason="one room only", by="owner", now=MONDAY_9
        )
    )
    assert lowered.kind == "incident-severity-lowered"
    assert lowered.payload["reason"] == "one room only" and lowered.payload["from"] == "P1"
    assert story.incident.severity == "P2"


def test_a_closed_incidents_severity_no_longer_changes(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = story_in(rules("alpenhof"), "closed")
    with pytest.raises(BadInput, match="is closed"):
        incidents.decide_raise(story.incident, to="P1", note=None, by=None, now=MONDAY_9)
    with pytest.raises(BadInput, match="is closed"):
        incidents.decide_lower(story.incident, to="P3", reason="x", by=None, now=MONDAY_9)


# --- post-mortems ---------------------------------------------------------------


def test_a_post_mortems_sections_and_actions_are_kept(
    rules: Callable[[str], IncidentRules],
) -> None:
    """A post-mortem's sections are recorded and its actions kept as a list."""
    story = story_in(rules("alpenhof"), "resolved")
    entry = story.postmortem(MONDAY_9 + HOUR)
    assert entry.payload["actions"] == [
        "Alert at 80 % disk use",
        "Rotate the slow-query log daily",
        "Add the disk check to the drill",
    ]
    assert entry.payload["sections"]["root cause"] == "A full disk on the database host."
    assert entry.payload["file"] == "pm.md"
    assert story.incident.postmortem is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "post-mortem pm.md is empty"),
        ("  \n\n", "post-mortem pm.md is empty"),
        (POSTMORTEM.replace("## Root cause", "## Cause"), "lacks the section(s) root cause"),
        (
            "# Summary\nx\n# Actions\n- y\n",
            "lacks the section(s) timeline, root cause, what went well",
        ),
    ],
)
def test_an_empty_or_incomplete_post_mortem_is_refused(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_postmortem(text, "pm.md")


def test_a_post_mortem_follows_the_fix(rules: Callable[[str], IncidentRules]) -> None:
    story = story_in(rules("alpenhof"), "fix")
    with pytest.raises(BadInput, match="is in fix: a post-mortem follows the fix"):
        story.postmortem(MONDAY_9 + HOUR)


def test_incident_ids_are_parsed_strictly() -> None:
    assert parse_id("INC-42") == 42
    assert parse_id(" inc-7 ") == 7
    for bad in ("42", "INC-0", "INC-x", "CHG-4", "INC-4-2"):
        with pytest.raises(BadInput, match="is not an incident id"):
            parse_id(bad)


def test_an_unknown_incident_is_named(rules: Callable[[str], IncidentRules]) -> None:
    story = open_story(rules("alpenhof"))
    with pytest.raises(BadInput, match="no incident INC-99"):
        find_incident(story.ledger.entries, 99)


# --- SLA clocks -----------------------------------------------------------------


def test_each_clock_stops_at_its_step(rules: Callable[[str], IncidentRules]) -> None:
    """The response clock stops at ack, restore at mitigate, resolution at fix."""
    story = open_story(rules("alpenhof"))
    story.step("ack", MONDAY_9 + 30 * MINUTE)
    clocks = story.clocks(MONDAY_9 + HOUR)
    assert (clocks["response"].state, clocks["response"].stopped_at) == (
        MET,
        (MONDAY_9 + 30 * MINUTE).astimezone(UTC),
    )
    assert clocks["restore"].state == clocks["resolution"].state == RUNNING
    story.step("mitigate", MONDAY_9 + 2 * HOUR)
    story.step("fix", MONDAY_9 + 3 * HOUR)
    clocks = story.clocks(MONDAY_9 + 30 * HOUR)
    assert [clocks[name].state for name in ("response", "restore", "resolution")] == [MET] * 3
    assert clocks["resolution"].used == 3 * HOUR


def test_due_at_t_and_acknowledged_at_t_is_met(rules: Callable[[str], IncidentRules]) -> None:
    """A clock due at T and stopped at T is met; at T a running clock is not yet breached."""
    # alpenhof's P1 response is "next business day": one business day (09:00-18:00),
    # so an incident opened Monday 09:00 is due Monday 18:00 local.
    due = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    story = open_story(rules("alpenhof"))
    assert story.clocks(MONDAY_9)["response"].due == due
    # At the due instant a running clock is still running, a minute later it is breached.
    assert story.clocks(due)["response"].state == RUNNING
    assert story.clocks(due + MINUTE)["response"].state == BREACHED
    story.step("ack", due)
    assert story.clocks(due + HOUR)["response"].state == MET
    late = open_story(rules("alpenhof"))
    late.step("ack", due + MINUTE)
    assert late.clocks(due + HOUR)["response"].state == BREACHED


def test_a_247_clock_runs_through_the_night(rules: Callable[[str], IncidentRules]) -> None:
    # riverton: 24/7, its contract's P1 response is 20 minutes, restore 4 h.
    york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 28, 23, 50, tzinfo=york)  # Saturday night
    story = open_story(rules("riverton"), at=opened)
    clocks = story.clocks(opened)
    assert clocks["response"].due == datetime(2026, 11, 29, 5, 10, tzinfo=UTC)
    assert clocks["restore"].due == datetime(2026, 11, 29, 8, 50, tzinfo=UTC)
    assert story.clocks(opened + 21 * MINUTE)["response"].state == BREACHED


def test_waiting_on_the_client_pauses_every_clock(rules: Callable[[str], IncidentRules]) -> None:
    """While the incident waits on the client, every clock is paused."""
    story = open_story(rules("alpenhof"))
    story.wait(MONDAY_9 + HOUR)
    during = story.clocks(MONDAY_9 + 5 * HOUR)
    assert {status.state for status in during.values()} == {PAUSED}
    assert all(status.due is None for status in during.values())
    assert during["response"].used == HOUR
    story.resume(MONDAY_9 + 5 * HOUR)
    # One hour used before the pause, eight left from 14:00: due Tuesday 13:00 local.
    after = story.clocks(MONDAY_9 + 5 * HOUR)
    assert after["response"].state == RUNNING
    assert after["response"].due == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_clock_overrun_before_the_pause_stays_breached(
    rules: Callable[[str], IncidentRules],
) -> None:
    york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 30, 10, 0, tzinfo=york)
    story = open_story(rules("riverton"), at=opened)
    story.wait(opened + 30 * MINUTE)  # after the 20-minute response was overrun
    clocks = story.clocks(opened + 2 * HOUR)
    assert clocks["response"].state == BREACHED
    assert clocks["restore"].state == PAUSED


def test_raising_the_severity_shortens_the_clocks(rules: Callable[[str], IncidentRules]) -> None:
    york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 30, 10, 0, tzinfo=york)
    story = open_story(rules("riverton"), at=opened, criticality="minor")  # P3: 1d response
    assert story.clocks(opened + HOUR)["response"].state == RUNNING
    story.ledger.add(
        incidents.decide_raise(story.incident, to="P1", note=None, by=None, now=opened + HOUR)
    )
    assert story.clocks(opened + HOUR)["response"].state == BREACHED


def test_thresholds_crossed_are_reported_for_escalation(
    rules: Callable[[str], IncidentRules],
) -> None:
    york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 30, 10, 0, tzinfo=york)
    story = open_story(rules("riverton"), at=opened)  # P1 response: 20 minutes

    def crossed(minutes: int) -> Sequence[float]:
        return story.clocks(opened + minutes * MINUTE)["response"].thresholds_crossed()

    assert crossed(9) == ()
    assert crossed(10) == (0.5,)
    assert crossed(20) == (0.5,)  # exactly spent: not yet a breach
    assert crossed(21) == (0.5, 1.0)
    assert story.clocks(opened + 10 * MINUTE)["response"].share_used == 0.5


def test_the_document_shows_each_clock_in_the_clients_zone(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"))
    document = incidents.incident_document(story.incident, story.rules, MONDAY_9 + HOUR)
    response = document["clocks"]["response"]
    assert response["due_at"] == "2026-11-30T18:00:00+01:00"
    assert response["remaining"] == "8h00m"
    assert response["state"] == "running"
    assert document["timezone"] == "Europe/Vienna"
    assert (document["id"], document["severity"], document["state"]) == (
        f"INC-{story.seq}",
        "P1",
        "triage",
    )
    # At 19:00 the business day is over: no SLA time is left, and the clock is an hour
    # overdue though no business hour ran since 18:00.
    late = incidents.incident_document(story.incident, story.rules, MONDAY_9 + 10 * HOUR)
    assert late["clocks"]["response"]["remaining"] == "0h00m"
    assert late["clocks"]["response"]["overdue"] == "1h00m"
    assert late["clocks"]["response"]["state"] == "breached"
    assert late["clocks"]["response"]["thresholds_crossed"] == [0.5, 1.0]


# --- what is recorded and shown, field by field ------------------------------------


def test_every_decision_records_exactly_its_entry(rules: Callable[[str], IncidentRules]) -> None:
    alpenhof = rules("alpenhof")
    story = open_story(alpenhof, host="alpenhof-db1")
    seq = story.seq
    at = MONDAY_9 + HOUR
    waiting = incidents.decide_wait(story.incident, on="client", note="logs", by="ana", now=at)
    assert waiting == NewEntry(
        "incident-waiting",
        "alpenhof",
        {"incident": seq, "on": "client", "note": "logs"},
        actor="ana",
        at=at,
    )
    story.ledger.add(waiting)
    assert incidents.decide_resume(story.incident, note=" ok ", by="ben", now=at) == NewEntry(
        "incident-resumed", "alpenhof", {"incident": seq, "note": "ok"}, actor="ben", at=at
    )
    story.resume(at)
    assert incidents.decide_step(
        alpenhof, story.incident, "ack", note=" seen ", by="cleo", now=at
    ) == NewEntry(
        "incident-acknowledged", "alpenhof", {"incident": seq, "note": "seen"}, "cleo", at
    )
    low = incidents.decide_lower(story.incident, to="p3", reason=" calm ", by="eve", now=at)
    assert low == NewEntry(
        "incident-severity-lowered",
        "alpenhof",
        {
            "incident": seq,
            "from": "P1",
            "to": "P3",
            "reason": "calm",
            "decision": "severity lowered",
        },
        "eve",
        at,
    )
    story.ledger.add(low)
    assert incidents.decide_raise(story.incident, to="P2", note=" wider ", by="fay", now=at) == (
        NewEntry(
            "incident-severity-raised",
            "alpenhof",
            {"incident": seq, "from": "P3", "to": "P2", "note": "wider"},
            "fay",
            at,
        )
    )
    for command in ("ack", "mitigate", "fix"):
        story.step(command, at)
    postmortem = incidents.decide_postmortem(
        story.incident, text=POSTMORTEM, name="pm.md", by="gus", now=at
    )
    assert (postmortem.kind, postmortem.client, postmortem.actor, postmortem.at) == (
        "incident-postmortem",
        "alpenhof",
        "gus",
        at,
    )
    assert postmortem.payload["incident"] == seq
    assert set(postmortem.payload["sections"]) == {
        "post-mortem: booking site down",
        "summary",
        "timeline",
        "root cause",
        "what went well",
        "actions",
    }


def test_raising_a_p1_is_refused(rules: Callable[[str], IncidentRules]) -> None:
    story = open_story(rules("alpenhof"))
    with pytest.raises(BadInput, match="is P1: P1 is not more urgent"):
        incidents.decide_raise(story.incident, to="P1", note=None, by=None, now=MONDAY_9)


def test_the_document_of_an_incident_gives_every_field_and_clock(
    rules: Callable[[str], IncidentRules],
) -> None:
    """Worked out by hand: alpenhof, P2 (stability-security: response one business day,
    restore 3d, resolution 10d of business days of 09:00-18:00, Austrian holidays off),
    opened Monday 09:00, waiting on the client 10:00-11:00, acknowledged at 12:00, seen
    at 14:00."""
    story = open_story(rules("alpenhof"), criticality="major", host="alpenhof-db1")
    story.wait(MONDAY_9 + HOUR)
    story.resume(MONDAY_9 + 2 * HOUR)
    story.step("ack", MONDAY_9 + 3 * HOUR)
    document = incidents.incident_document(story.incident, story.rules, MONDAY_9 + 5 * HOUR)
    seq = story.seq
    assert document == {
        "id": f"INC-{seq}",
        "client": "alpenhof",
        "title": "booking site down",
        "impact": "availability",
        "criticality": "major",
        "severity": "P2",
        "host": "alpenhof-db1",
        "reported_by": "front desk",
        "ticket": "T-1",
        "state": "mitigation",
        "waiting_on": None,
        "opened_at": "2026-11-30T09:00:00+01:00",
        "timezone": "Europe/Vienna",
        "clocks": {
            # 1 h before the pause, 7 h after it on Monday, 1 h on Tuesday: due 10:00.
            "response": {
                "state": "met",
                "budget": "1d",
                "due_at": "2026-12-01T10:00:00+01:00",
                "stopped_at": "2026-11-30T12:00:00+01:00",
                "remaining": "7h00m",
                "remaining_seconds": 7 * 3600,
                "overdue": "0h00m",
                "overdue_seconds": 0,
                "used_seconds": 2 * 3600,
                "thresholds_crossed": [],
            },
            # 27 business hours: 8 on Monday, 9 on Tuesday and Wednesday, 1 on Thursday.
            "restore": {
                "state": "running",
                "budget": "3d",
                "due_at": "2026-12-03T10:00:00+01:00",
                "stopped_at": None,
                "remaining": "23h00m",
                "remaining_seconds": 23 * 3600,
                "overdue": "0h00m",
                "overdue_seconds": 0,
                "used_seconds": 4 * 3600,
                "thresholds_crossed": [],
            },
            # 90 business hours: 8 on Monday, 9 on each business day to Monday 14
            # December (Tuesday 8th is a public holiday in Austria), 1 on Tuesday 15th.
            "resolution": {
                "state": "running",
                "budget": "10d",
                "due_at": "2026-12-15T10:00:00+01:00",
                "stopped_at": None,
                "remaining": "86h00m",
                "remaining_seconds": 86 * 3600,
                "overdue": "0h00m",
                "overdue_seconds": 0,
                "used_seconds": 4 * 3600,
                "thresholds_crossed": [],
            },
        },
        "postmortem": None,
        "postmortem_required": False,
        "timeline": [
            {
                "seq": seq,
                "kind": "incident-opened",
                "at": "2026-11-30T09:00:00+01:00",
                "by": "ana",
            },
            {
                "seq": seq + 1,
                "kind": "incident-waiting",
                "at": "2026-11-30T10:00:00+01:00",
                "by": "ana",
                "on": "client",
                "note": "logs asked",
            },
            {
                "seq": seq + 2,
                "kind": "incident-resumed",
                "at": "2026-11-30T11:00:00+01:00",
                "by": "ana",
                "note": "",
            },
            {
                "seq": seq + 3,
                "kind": "incident-acknowledged",
                "at": "2026-11-30T12:00:00+01:00",
                "by": "ana",
                "note": "done",
            },
        ],
    }


def test_an_overrun_clock_shows_negative_time_left_and_how_late_it_is(
    rules: Callable[[str], IncidentRules],
) -> None:
    york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 30, 10, 0, tzinfo=york)
    story = open_story(rules("riverton"), at=opened)  # P1 response: 20 minutes, 24/7
    document = incidents.incident_document(story.incident, story.rules, opened + HOUR)
    response = document["clocks"]["response"]
    assert (response["remaining"], response["remaining_seconds"]) == ("-0h40m", -40 * 60)
    assert (response["overdue"], response["overdue_seconds"]) == ("0h40m", 40 * 60)
    assert document["postmortem_required"] is True


def test_a_post_mortem_is_shown_with_its_actions(rules: Callable[[str], IncidentRules]) -> None:
    story = story_in(rules("alpenhof"), "resolved")
    story.postmortem(MONDAY_9 + HOUR)
    document = incidents.incident_document(story.incident, story.rules, MONDAY_9 + HOUR)
    assert document["postmortem"] == {
        "file": "pm.md",
        "actions": [
            "Alert at 80 % disk use",
            "Rotate the slow-query log daily",
            "Add the disk check to the drill",
        ],
    }


def test_changing_the_severity_while_waiting_keeps_the_incident_waiting(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"), criticality="minor")
    story.wait(MONDAY_9 + HOUR)
    story.ledger.add(
        incidents.decide_raise(story.incident, to="P2", note=None, by=None, now=MONDAY_9 + HOUR)
    )
    assert story.incident.waiting_since == (MONDAY_9 + HOUR).astimezone(UTC)
    assert story.incident.pauses == ()
    assert [event.kind for event in story.incident.timeline][-1] == "incident-severity-raised"


def test_an_out_of_order_step_names_the_state_it_applies_in(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"))
    with pytest.raises(BadInput) as refused:
        story.step("fix", MONDAY_9 + HOUR)
    assert refused.value.message == (
        f"INC-{story.seq} is in triage: 'fix' is out of order (it applies in state fix); "
        f"next is 'incident ack INC-{story.seq}'"
    )


def test_a_post_mortems_headings_may_end_with_a_colon_after_a_preamble() -> None:
    text = "Written by the on-call engineer.\n\n" + POSTMORTEM.replace(
        "## Root cause", "## Root Cause:"
    )
    parsed = parse_postmortem(text, "pm.md")
    assert parsed["sections"]["root cause"] == "A full disk on the database host."


def test_thresholds_above_the_budget_are_reached_past_it(
    rules: Callable[[str], IncidentRules],
) -> None:
    york = ZoneInfo("America/New_York")
    opened = datetime(2026, 11, 30, 10, 0, tzinfo=york)
    story = open_story(rules("riverton"), at=opened)  # 20 minutes
    shares = (0.5, 1.0, 1.5)
    assert story.clocks(opened + 30 * MINUTE)["response"].thresholds_crossed(shares) == (0.5, 1.0)
    assert story.clocks(opened + 31 * MINUTE)["response"].thresholds_crossed(shares) == shares


def test_the_refusals_say_exactly_why(rules: Callable[[str], IncidentRules]) -> None:
    alpenhof = rules("alpenhof")
    arguments: dict[str, Any] = dict(OPEN_ARGUMENTS)
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: incidents.decide_open(alpenhof, **{**arguments, "impact": "fame"}),
            "impact 'fame' is not one of availability, security, data, operations",
        ),
        (
            lambda: incidents.decide_open(alpenhof, **{**arguments, "criticality": "mild"}),
            "criticality 'mild' is not one of critical, major, minor",
        ),
        (
            lambda: incidents.decide_open(alpenhof, **{**arguments, "host": "web9"}),
            "alpenhof has no host 'web9' in its inventory (hosts: alpenhof-db1, alpenhof-web1)",
        ),
        (
            lambda: incidents.decide_open(
                replace(alpenhof, hosts=frozenset()), **{**arguments, "host": "web9"}
            ),
            "alpenhof has no host 'web9' in its inventory (hosts: none)",
        ),
        (
            lambda: parse_postmortem("# Summary\nx\n", "pm.md"),
            "post-mortem pm.md lacks the section(s) timeline, root cause, what went well, "
            "actions (Markdown headings: summary, timeline, root cause, what went well, actions)",
        ),
    ]
    for call, message in cases:
        with pytest.raises(BadInput) as refused:
            call()
        assert refused.value.message == message
    story = open_story(alpenhof, criticality="major")  # P2
    with pytest.raises(BadInput) as refused:
        incidents.decide_raise(story.incident, to="P3", note=None, by=None, now=MONDAY_9)
    assert refused.value.message == (
        f"INC-{story.seq} is P2: P3 is not more urgent (lowering is 'incident lower ... --reason')"
    )
    with pytest.raises(BadInput) as refused:
        incidents.decide_lower(story.incident, to="P1", reason="x", by=None, now=MONDAY_9)
    assert refused.value.message == (
        f"INC-{story.seq} is P2: P1 is not less urgent (raising is 'incident raise')"
    )
    story.wait(MONDAY_9 + HOUR)
    with pytest.raises(BadInput) as refused:
        story.step("ack", MONDAY_9 + 2 * HOUR)
    assert refused.value.message == (
        f"INC-{story.seq} waits on the client since 2026-11-30T10:00:00+01:00: "
        f"'incident resume INC-{story.seq}' first"
    )
    with pytest.raises(BadInput, match=r"post-mortem notes\.md is empty"):
        incidents.decide_postmortem(story.incident, text="", name="notes.md", by=None, now=MONDAY_9)


def test_a_closed_incident_takes_no_post_mortem(rules: Callable[[str], IncidentRules]) -> None:
    story = story_in(rules("alpenhof"), "closed")
    with pytest.raises(BadInput, match=f"INC-{story.seq} is closed: nothing more can be done"):
        story.postmortem(MONDAY_9 + HOUR)


def test_entries_naming_no_known_incident_are_ignored(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"))
    story.ledger.add(
        NewEntry("incident-acknowledged", "alpenhof", {"incident": 999, "note": ""}, "x", MONDAY_9)
    )
    story.ledger.add(
        NewEntry("incident-acknowledged", "alpenhof", {"incident": "1", "note": ""}, "x", MONDAY_9)
    )
    assert list(incidents.fold_incidents(story.ledger.entries)) == [story.seq]
    assert story.incident.state == "triage"


def test_the_timeline_shows_each_change_with_its_reason(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"), criticality="minor")
    story.ledger.add(
        incidents.decide_raise(story.incident, to="P1", note=None, by="ana", now=MONDAY_9)
    )
    story.ledger.add(
        incidents.decide_lower(story.incident, to="P2", reason="calm", by="ben", now=MONDAY_9)
    )
    story.wait(MONDAY_9 + HOUR)
    document = incidents.incident_document(story.incident, story.rules, MONDAY_9 + HOUR)
    assert document["waiting_on"] == "client"
    assert document["timeline"][1:3] == [
        {
            "seq": story.seq + 1,
            "kind": "incident-severity-raised",
            "at": "2026-11-30T09:00:00+01:00",
            "by": "ana",
            "from": "P3",
            "to": "P1",
            "note": "",
        },
        {
            "seq": story.seq + 2,
            "kind": "incident-severity-lowered",
            "at": "2026-11-30T09:00:00+01:00",
            "by": "ben",
            "from": "P1",
            "to": "P2",
            "reason": "calm",
        },
    ]


def test_a_runs_entries_join_the_timeline_of_the_incident_it_names(
    rules: Callable[[str], IncidentRules],
) -> None:
    story = open_story(rules("alpenhof"))
    ledger, named = story.ledger, f"inc-{story.seq}"  # any case, as typed

    def run_entry(kind: str, payload: dict[str, Any], client: str = "alpenhof") -> Entry:
        return ledger.add(NewEntry(kind, client, payload, actor="ana"), MONDAY_9 + HOUR)

    started = run_entry("run-started", {"run_id": "r1", "incident": named})
    finished = run_entry("run-finished", {"run_id": "r1", "started_seq": started.seq})
    refused = run_entry("run-refused", {"action": "update", "incident": named})
    # None of these is the incident's: another client's run naming it, a run naming no
    # incident or a malformed id, the end of a run that named none, an unknown start.
    other = run_entry("run-started", {"run_id": "r2", "incident": named}, client="riverton")
    run_entry("run-finished", {"run_id": "r2", "started_seq": other.seq}, client="riverton")
    plain = run_entry("run-started", {"run_id": "r3"})
    run_entry("run-finished", {"run_id": "r3", "started_seq": plain.seq})
    run_entry("run-started", {"run_id": "r4", "incident": "INC-x"})
    run_entry("run-started", {"run_id": "r5", "incident": story.seq})
    run_entry("run-finished", {"run_id": "r6", "started_seq": str(started.seq)})
    run_entry("run-finished", {"run_id": "r7", "started_seq": started.seq + 1000})

    incident = story.incident
    assert [event.seq for event in incident.timeline] == [
        story.seq,
        started.seq,
        finished.seq,
        refused.seq,
    ]
    # A run works on the incident; it moves none of its steps.
    assert incident.state == "triage" and incident.stopped == {}
