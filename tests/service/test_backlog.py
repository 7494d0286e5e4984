"""The backlog derived from a client's entries, driven with an injected clock.

Entries are written here by hand, as the ledger would store them (no database: the
module under test is pure), so that the expected order is worked out in the test from
what each item is, not from the module's sort. The policies are the demo contracts':
alpenhof (stability-security: WIP cap 2, open-items cap 10, post-mortem for P1 only)
and riverton (institutional-sla, government: changes need an approval).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.config.clients import load_client
from webmg_ops.config.policy import Policy, PolicyValue
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.ledger.canonical import canonical_json
from webmg_ops.service import backlog
from webmg_ops.service.backlog import Item, backlog_of

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Ledger:
    """A client's entries as the ledger hands them back: a seq each, in order, each at an
    instant the test gives."""

    def __init__(self, client: str = "alpenhof") -> None:
        self.client = client
        self.entries: list[Entry] = []
        self._seq = itertools.count(1)
        self._clock = itertools.count(0)

    def add(self, kind: str, payload: dict[str, Any], at: datetime | None = None) -> Entry:
        instant = at if at is not None else T0 + next(self._clock) * MINUTE
        entry = Entry(
            seq=next(self._seq),
            kind=kind,
            client=self.client,
            at=instant,
            actor="ana",
            payload_json=canonical_json(payload),
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        self.entries.append(entry)
        return entry

    def record(self, drafts: NewEntry | list[NewEntry]) -> list[Entry]:
        """Append what a decision drafted, as record_derived would."""
        listed = drafts if isinstance(drafts, list) else [drafts]
        return [self.add(draft.kind, dict(draft.payload), draft.at) for draft in listed]

    # Incidents and changes written as their own flows write them.

    def incident(
        self, severity: str, impact: str, criticality: str, state: str, at: datetime | None = None
    ) -> int:
        """Open an incident and take it to ``state`` (triage, mitigation, fix, resolved)."""
        opened = self.add(
            "incident-opened",
            {
                "title": f"{severity} {impact} {criticality}",
                "impact": impact,
                "criticality": criticality,
                "severity": severity,
                "host": None,
                "reported_by": None,
                "ticket": None,
            },
            at,
        )
        steps = ["incident-acknowledged", "incident-mitigated", "incident-fixed"]
        count = ["triage", "mitigation", "fix", "resolved"].index(state)
        for kind in steps[:count]:
            self.add(kind, {"incident": opened.seq, "note": "step"})
        return opened.seq

    def postmortem(self, incident: int, actions: list[str]) -> int:
        return self.add(
            "incident-postmortem",
            {"incident": incident, "file": "pm.md", "sections": {}, "actions": actions},
        ).seq

    def change(self, state: str = "requested", risk: str | None = None) -> str:
        """Request a change and take it to ``state``; ``risk`` is its estimate's."""
        requested = self.add(
            "change-requested",
            {"title": f"change {risk}", "description": "d", "requested_by": "Anna"},
        )
        change_id = f"CHG-{requested.seq}"
        order = ["requested", "scoped", "estimated", "scheduled", "deployed", "accepted"]
        reached = order.index(state)
        if reached >= 1:
            self.add(
                "change-scoped", {"change": change_id, "in": ["x"], "out": [], "out_of_scope": []}
            )
        if reached >= 2:
            self.add("change-estimated", {"change": change_id, "hours": 2.0, "risk": risk or "low"})
        if reached >= 3:
            self.add(
                "change-scheduled",
                {"change": change_id, "at": T0.isoformat(), "window": "w"},
            )
        if reached >= 4:
            self.add("change-deployed", {"change": change_id})
        if reached >= 5:
            self.add("change-accepted", {"change": change_id, "by": "Anna", "note": ""})
        return change_id


@pytest.fixture
def alpenhof(inventories: Path) -> Policy:
    return load_client(inventories, "alpenhof").policy


@pytest.fixture
def riverton(inventories: Path) -> Policy:
    return load_client(inventories, "riverton").policy


def ids(items: list[Item]) -> list[str]:
    return [item.id for item in items]


def test_the_backlog_is_ordered_by_severity_impact_criticality_then_risk_then_age(
    alpenhof: Policy,
) -> None:
    """Incident work first, by severity, then impact (availability, security, data,
    operations) and criticality, then age; then changes by risk (high, medium, low, not
    estimated); closed work and incidents still in triage or mitigation are not items."""
    ledger = Ledger()
    low = ledger.change("estimated", "low")
    high = ledger.change("estimated", "high")
    unestimated = ledger.change("requested")
    ledger.change("accepted", "medium")  # accepted: out of the backlog
    p3 = ledger.incident("P3", "availability", "minor", "fix")
    p2_security = ledger.incident("P2", "security", "major", "fix")
    p2_availability = ledger.incident("P2", "availability", "major", "fix")
    p2_later = ledger.incident("P2", "availability", "major", "fix")
    with_pm = ledger.incident("P1", "data", "critical", "resolved")
    postmortem = ledger.postmortem(with_pm, ["Alert at 80 % disk", "Rotate logs"])
    pm_pending = ledger.incident("P1", "availability", "critical", "resolved")
    ledger.incident("P3", "operations", "minor", "triage")  # live: on the SLA clocks
    ledger.incident("P2", "availability", "major", "mitigation")  # live as well
    ledger.incident("P3", "availability", "minor", "resolved")  # no post-mortem needed

    # Worked out by hand: P1 availability before P1 data; the two P2 availability major
    # incidents oldest first, before P2 security; then P3; then changes high, low, none.
    expected = [
        f"INC-{pm_pending}",
        f"ACT-{postmortem}.1",
        f"ACT-{postmortem}.2",
        f"INC-{p2_availability}",
        f"INC-{p2_later}",
        f"INC-{p2_security}",
        f"INC-{p3}",
        high,
        low,
        unestimated,
    ]
    assert ids(backlog_of(ledger.entries, alpenhof)) == expected
    # The order does not depend on the order entries were read in beyond their seq.
    assert ids(backlog_of(list(ledger.entries), alpenhof)) == expected


def test_a_raised_severity_moves_the_item_and_a_deprioritised_item_goes_last(
    alpenhof: Policy,
) -> None:
    """The incident's current severity counts (a raise moves it up); an item the client
    deprioritised goes after every other, whatever its priority."""
    ledger = Ledger()
    change = ledger.change("requested")
    minor = ledger.incident("P3", "availability", "minor", "fix")
    major = ledger.incident("P2", "availability", "major", "fix")
    assert ids(backlog_of(ledger.entries, alpenhof)) == [f"INC-{major}", f"INC-{minor}", change]
    ledger.add("incident-severity-raised", {"incident": minor, "from": "P3", "to": "P1"})
    assert ids(backlog_of(ledger.entries, alpenhof)) == [f"INC-{minor}", f"INC-{major}", change]
    ledger.record(
        backlog.draft_deprioritise(
            ledger.entries, alpenhof, f"INC-{minor}", by="Anna Gruber", note="later", now=T0
        )
    )
    assert ids(backlog_of(ledger.entries, alpenhof)) == [f"INC-{major}", change, f"INC-{minor}"]


def test_each_item_says_what_it_waits_on_and_whom(alpenhof: Policy, riverton: Policy) -> None:
    """The client owes decisions, approvals, acceptances and answers; the agency owes work."""
    ledger = Ledger("riverton")
    requested = ledger.change("requested")
    out_of_scope = ledger.change("requested")
    ledger.add(
        "change-scoped",
        {"change": out_of_scope, "in": ["e-mail"], "out": [], "out_of_scope": ["e-mail"]},
    )
    scoped = ledger.change("scoped")
    estimated = ledger.change("estimated", "medium")
    scheduled = ledger.change("scheduled", "low")
    approved = ledger.change("scheduled", "low")
    ledger.add("approval", {"action": "deploy", "by": "M. Reed", "note": "", "change": approved})
    deployed = ledger.change("deployed", "low")
    waiting = ledger.incident("P2", "data", "major", "fix")
    ledger.add("incident-waiting", {"incident": waiting, "on": "client", "note": "logs"})
    fixing = ledger.incident("P3", "data", "minor", "fix")
    pm_due = ledger.incident("P2", "operations", "major", "resolved")  # riverton: P2 needs one
    postmortem = ledger.postmortem(ledger.incident("P1", "data", "critical", "resolved"), ["a"])

    waits = {
        item.id: (item.waits_on, item.waiting_for) for item in backlog_of(ledger.entries, riverton)
    }
    assert waits == {
        requested: ("agency", "work: scope"),
        out_of_scope: ("client", "decision: accept out of scope"),
        scoped: ("agency", "work: estimate"),
        estimated: ("agency", "work: schedule"),
        scheduled: ("client", "approval"),  # riverton's policy requires one
        approved: ("agency", "work: deploy"),
        deployed: ("client", "acceptance"),
        f"INC-{waiting}": ("client", "answer: the incident waits on the client"),
        f"INC-{fixing}": ("agency", "work: fix"),
        f"INC-{pm_due}": ("agency", "work: post-mortem"),
        f"ACT-{postmortem}.1": ("agency", "work"),
    }
    # Without an approval gate a scheduled change waits on the agency's deploy.
    alpenhof_ledger = Ledger()
    scheduled_here = alpenhof_ledger.change("scheduled", "low")
    (item,) = backlog_of(alpenhof_ledger.entries, alpenhof)
    assert (item.id, item.waits_on, item.waiting_for) == (scheduled_here, "agency", "work: deploy")


def test_post_mortem_actions_are_items_until_done_and_a_later_post_mortem_replaces_them(
    alpenhof: Policy,
) -> None:
    """Each action of the post-mortem becomes ``ACT-<post-mortem seq>.<n>``, titled with
    the incident; marked done it leaves the backlog; a post-mortem rewritten before
    closing replaces the earlier one's actions."""
    ledger = Ledger()
    incident = ledger.incident("P1", "availability", "critical", "resolved")
    first = ledger.postmortem(incident, ["Alert at 80 % disk", "Rotate logs"])
    items = backlog_of(ledger.entries, alpenhof)
    assert [(item.id, item.title, item.type) for item in items] == [
        (f"ACT-{first}.1", f"INC-{incident}: Alert at 80 % disk", "post-mortem action"),
        (f"ACT-{first}.2", f"INC-{incident}: Rotate logs", "post-mortem action"),
    ]
    ledger.record(
        backlog.draft_done(ledger.entries, alpenhof, f"ACT-{first}.1", by="ana", note="", now=T0)
    )
    assert ids(backlog_of(ledger.entries, alpenhof)) == [f"ACT-{first}.2"]
    second = ledger.postmortem(incident, ["Add a disk check to the drill"])
    ledger.add("incident-closed", {"incident": incident, "note": "closed"})
    # Closing the incident does not close its actions.
    assert ids(backlog_of(ledger.entries, alpenhof)) == [f"ACT-{second}.1"]


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("backlog-started", {"by": "ana"}),
        ("backlog-deprioritised", {"by": "Anna", "was_in_progress": False}),
        ("backlog-reprioritised", {"by": "Anna"}),
    ],
)
def test_an_action_marked_done_stays_done_whatever_backlog_entry_follows(
    alpenhof: Policy, kind: str, payload: dict[str, Any]
) -> None:
    """An item's backlog entries add up in ledger order: once an action is marked done it
    has left the backlog, and a later entry naming it (the commands write none, since it
    is no longer an item) neither brings it back nor clears the done mark."""
    ledger = Ledger()
    postmortem = ledger.postmortem(
        ledger.incident("P1", "availability", "critical", "resolved"), ["one", "two"]
    )
    done, other = f"ACT-{postmortem}.1", f"ACT-{postmortem}.2"
    ledger.record(backlog.draft_done(ledger.entries, alpenhof, done, by="ana", note="", now=T0))
    ledger.add(kind, {"item": done, **payload})
    # Only the action not marked done is left.
    assert ids(backlog_of(ledger.entries, alpenhof)) == [other]


def test_the_wip_cap_allows_exactly_the_cap_and_refuses_one_more(alpenhof: Policy) -> None:
    """alpenhof's WIP cap is 2: the second start reaches it, the third is refused naming
    the cap and what is in progress; finishing one makes room."""
    assert alpenhof.get("backlog.wip_cap") == 2
    ledger = Ledger()
    incident = ledger.incident("P1", "availability", "critical", "resolved")
    postmortem = ledger.postmortem(incident, ["one", "two", "three"])
    one, two, three = (f"ACT-{postmortem}.{n}" for n in (1, 2, 3))
    for item in (one, two):
        ledger.record(backlog.draft_start(ledger.entries, alpenhof, item, by="ana", now=T0))
    with pytest.raises(Refused) as refused:
        backlog.draft_start(ledger.entries, alpenhof, three, by="ana", now=T0)
    assert f"WIP cap (backlog.wip_cap) is 2: 2 item(s) in progress ({one}, {two})" in str(
        refused.value
    )
    ledger.record(backlog.draft_done(ledger.entries, alpenhof, one, by="ana", note="", now=T0))
    (started,) = ledger.record(
        backlog.draft_start(ledger.entries, alpenhof, three, by="ana", now=T0)
    )
    assert started.payload == {"item": three, "by": "ana"}
    in_progress = [item.id for item in backlog_of(ledger.entries, alpenhof) if item.in_progress]
    assert in_progress == [two, three]


def test_deprioritising_an_item_in_progress_frees_its_place(alpenhof: Policy) -> None:
    """A deprioritised item counts towards neither cap: the client's decision makes room."""
    ledger = Ledger()
    first = ledger.change("requested")
    second = ledger.change("requested")
    third = ledger.change("requested")
    for item in (first, second):
        ledger.record(backlog.draft_start(ledger.entries, alpenhof, item, by="ana", now=T0))
    with pytest.raises(Refused):
        backlog.draft_start(ledger.entries, alpenhof, third, by="ana", now=T0)
    decision, marked = ledger.record(
        backlog.draft_deprioritise(
            ledger.entries,
            alpenhof,
            first,
            by="Anna Gruber (owner)",
            note="after the season",
            now=T0,
        )
    )
    assert (decision.kind, decision.payload) == (
        "decision-recorded",
        {
            "title": f"{first} deprioritised: change None",
            "by": "Anna Gruber (owner)",
            "party": "client",
            "note": "after the season",
            "subject": first,
        },
    )
    assert marked.payload == {"item": first, "by": "Anna Gruber (owner)", "was_in_progress": True}
    ledger.record(backlog.draft_start(ledger.entries, alpenhof, third, by="ana", now=T0))
    parked = backlog.find_item(backlog_of(ledger.entries, alpenhof), first)
    assert (parked.in_progress, parked.started_by, parked.started_at) == (False, None, None)
    assert parked.deprioritised_by == f"DEC-{decision.seq}"


def test_a_deprioritisation_without_the_clients_decision_is_by_an_unknown_decision(
    alpenhof: Policy,
) -> None:
    """A backlog-deprioritised entry with no decision on its item before it (a ledger the
    commands did not write: they record both together) still deprioritises the item, by
    "unknown": it goes last, counts towards neither cap, and is not started."""
    ledger = Ledger()
    parked = ledger.change("requested")
    other = ledger.change("requested")
    # A decision on the other change is not the parked one's.
    ledger.add(
        "decision-recorded",
        {"title": "t", "by": "Anna", "party": "client", "note": "n", "subject": other},
    )
    ledger.add("backlog-deprioritised", {"item": parked, "by": "Anna", "was_in_progress": False})
    items = backlog_of(ledger.entries, alpenhof)
    assert ids(items) == [other, parked]
    assert [(item.deprioritised_by, item.counts) for item in items] == [
        (None, True),
        ("unknown", False),
    ]
    with pytest.raises(BadInput, match=r"was deprioritised by the client \(unknown\)"):
        backlog.draft_start(ledger.entries, alpenhof, parked, by="ana", now=T0)


def test_the_open_items_cap_allows_exactly_the_cap(alpenhof: Policy) -> None:
    """alpenhof's open-items cap is 10: with 9 open items a change may join, with 10 it
    is refused; a deprioritised item does not count."""
    assert alpenhof.get("backlog.open_cap") == 10
    ledger = Ledger()
    made = [ledger.change("requested") for _ in range(9)]
    backlog.check_room_for(ledger.entries, alpenhof, "alpenhof")
    made.append(ledger.change("requested"))
    with pytest.raises(Refused) as refused:
        backlog.check_room_for(ledger.entries, alpenhof, "alpenhof")
    assert "10 open item(s), the open-items cap (backlog.open_cap) is 10" in str(refused.value)
    ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, made[0], by="Anna", note="n", now=T0)
    )
    backlog.check_room_for(ledger.entries, alpenhof, "alpenhof")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FOO-1", "is not a backlog item id"),
        ("ACT-3", "is not a backlog item id"),
        ("CHG-3.1", "is not a backlog item id"),
        ("CHG-0", "is not a backlog item id"),
        ("CHG-99", "CHG-99 is not in the backlog"),
    ],
)
def test_a_bad_item_id_is_bad_input(alpenhof: Policy, text: str, message: str) -> None:
    ledger = Ledger()
    ledger.change("requested")
    with pytest.raises(BadInput, match=message):
        backlog.draft_start(ledger.entries, alpenhof, text, by="ana", now=T0)


def test_steps_out_of_place_are_bad_input(alpenhof: Policy) -> None:
    """Done is for post-mortem actions only; a start twice, a start of a deprioritised
    item, a second deprioritisation and blank text are refused as bad input."""
    ledger = Ledger()
    change = ledger.change("requested")
    incident = f"INC-{ledger.incident('P2', 'data', 'major', 'fix')}"
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: backlog.draft_done(ledger.entries, alpenhof, change, by="a", note="", now=T0),
            "is a change: it leaves the backlog when the client accepts",
        ),
        (
            lambda: backlog.draft_done(ledger.entries, alpenhof, incident, by="a", note="", now=T0),
            "is an incident follow-up",
        ),
        (
            lambda: backlog.draft_start(ledger.entries, alpenhof, change, by=" ", now=T0),
            "--by is empty",
        ),
        (
            lambda: backlog.draft_deprioritise(
                ledger.entries, alpenhof, change, by="Anna", note=" ", now=T0
            ),
            "--note is empty",
        ),
    ]
    for call, message in cases:
        with pytest.raises(BadInput, match=message):
            call()
    ledger.record(backlog.draft_start(ledger.entries, alpenhof, incident, by="ana", now=T0))
    with pytest.raises(BadInput, match="already in progress"):
        backlog.draft_start(ledger.entries, alpenhof, incident, by="ana", now=T0)
    ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, change, by="Anna", note="n", now=T0)
    )
    with pytest.raises(BadInput, match="already deprioritised"):
        backlog.draft_deprioritise(ledger.entries, alpenhof, change, by="Anna", note="n", now=T0)
    with pytest.raises(BadInput, match="was deprioritised by the client"):
        backlog.draft_start(ledger.entries, alpenhof, change, by="ana", now=T0)


def test_the_client_may_take_a_deprioritised_item_back_within_the_open_items_cap(
    alpenhof: Policy,
) -> None:
    """Taking an item back is the client's decision too: the item returns to its place by
    priority, counted again, not in progress; past the open-items cap it is refused."""
    ledger = Ledger()
    made = [ledger.change("requested") for _ in range(10)]
    ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, made[0], by="Anna", note="n", now=T0)
    )
    ledger.change("requested")  # the freed place is taken: 10 open items again
    with pytest.raises(
        Refused, match=r"^alpenhof's backlog is full: .* cap \(backlog.open_cap\) is 10"
    ):
        backlog.draft_reprioritise(ledger.entries, alpenhof, made[0], by="Anna", note="n", now=T0)
    ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, made[1], by="Anna", note="n", now=T0)
    )
    decision, marked = ledger.record(
        backlog.draft_reprioritise(
            ledger.entries, alpenhof, made[0], by="Anna Gruber", note="season over", now=T0
        )
    )
    assert (decision.kind, decision.payload["party"], decision.payload["subject"]) == (
        "decision-recorded",
        "client",
        made[0],
    )
    assert (marked.kind, marked.payload) == (
        "backlog-reprioritised",
        {"item": made[0], "by": "Anna Gruber"},
    )
    items = backlog_of(ledger.entries, alpenhof)
    # Oldest change first again; the one deprioritised since then goes last.
    assert ids(items)[0] == made[0] and ids(items)[-1] == made[1]
    assert (items[0].in_progress, items[0].deprioritised_by) == (False, None)
    with pytest.raises(BadInput, match="is not deprioritised"):
        backlog.draft_reprioritise(ledger.entries, alpenhof, made[0], by="Anna", note="n", now=T0)


def test_each_item_is_shown_with_every_field(alpenhof: Policy) -> None:
    """An item's document carries what it is, its priority fields, what it waits on, and
    whether it is in progress or deprioritised (and by which decision)."""
    ledger = Ledger()
    ledger.change("accepted", "high")  # read first, and skipped: accepted
    change = ledger.change("scheduled", "low")
    incident = ledger.incident("P2", "data", "major", "fix")
    closed = ledger.incident("P1", "security", "critical", "resolved")
    postmortem = ledger.postmortem(closed, ["Rotate keys"])
    started = T0 + 5 * MINUTE
    ledger.record(
        backlog.draft_start(ledger.entries, alpenhof, f"INC-{incident}", by="ana", now=started)
    )
    decision, _marked = ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, change, by="Anna", note="n", now=T0)
    )
    at = {entry.seq: entry.at.isoformat() for entry in ledger.entries}
    change_seq = int(change.split("-")[1])
    common = {"client": "alpenhof", "risk": None, "started_by": None, "started_at": None}
    assert [item.document() for item in backlog_of(ledger.entries, alpenhof)] == [
        {
            **common,
            "id": f"ACT-{postmortem}.1",
            "type": "post-mortem action",
            "title": f"INC-{closed}: Rotate keys",
            "created_at": at[postmortem],
            "severity": "P1",
            "impact": "security",
            "criticality": "critical",
            "state": "open",
            "waits_on": "agency",
            "waiting_for": "work",
            "in_progress": False,
            "deprioritised_by": None,
        },
        {
            **common,
            "id": f"INC-{incident}",
            "type": "incident follow-up",
            "title": "P2 data major",
            "created_at": at[incident],
            "severity": "P2",
            "impact": "data",
            "criticality": "major",
            "state": "fix",
            "waits_on": "agency",
            "waiting_for": "work: fix",
            "in_progress": True,
            "started_by": "ana",
            "started_at": started.isoformat(),
            "deprioritised_by": None,
        },
        {
            **common,
            "id": change,
            "type": "change",
            "title": "change low",
            "created_at": at[change_seq],
            "severity": None,
            "impact": None,
            "criticality": None,
            "risk": "low",
            "state": "scheduled",
            "waits_on": "agency",
            "waiting_for": "work: deploy",
            "in_progress": False,
            "deprioritised_by": f"DEC-{decision.seq}",
        },
    ]


def test_each_step_drafts_exactly_its_entries(alpenhof: Policy) -> None:
    """Start, done, deprioritise and take back: each draft is the client's, at the
    instant given, with exactly its payload (the decision first where there is one)."""
    ledger = Ledger()
    change = ledger.change("requested")
    postmortem = ledger.postmortem(ledger.incident("P1", "data", "critical", "resolved"), ["a"])
    action = f"ACT-{postmortem}.1"
    assert backlog.draft_start(ledger.entries, alpenhof, action, by=" ana ", now=T0) == NewEntry(
        "backlog-started", "alpenhof", {"item": action, "by": "ana"}, at=T0
    )
    assert backlog.draft_done(
        ledger.entries, alpenhof, action, by="ana", note=" alert added ", now=T0
    ) == NewEntry(
        "backlog-done", "alpenhof", {"item": action, "by": "ana", "note": "alert added"}, at=T0
    )
    title = f"{change} deprioritised: change None"
    assert backlog.draft_deprioritise(
        ledger.entries, alpenhof, change, by=" Anna ", note=" later ", now=T0
    ) == [
        NewEntry(
            "decision-recorded",
            "alpenhof",
            {"title": title, "by": "Anna", "party": "client", "note": "later", "subject": change},
            at=T0,
        ),
        NewEntry(
            "backlog-deprioritised",
            "alpenhof",
            {"item": change, "by": "Anna", "was_in_progress": False},
            at=T0,
        ),
    ]
    ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, change, by="Anna", note="n", now=T0)
    )
    title = f"{change} taken back into the backlog: change None"
    assert backlog.draft_reprioritise(
        ledger.entries, alpenhof, change, by=" Anna ", note=" now ", now=T0
    ) == [
        NewEntry(
            "decision-recorded",
            "alpenhof",
            {"title": title, "by": "Anna", "party": "client", "note": "now", "subject": change},
            at=T0,
        ),
        NewEntry("backlog-reprioritised", "alpenhof", {"item": change, "by": "Anna"}, at=T0),
    ]


def test_each_refusal_says_why_and_what_to_do(alpenhof: Policy) -> None:
    """The messages in full: the cap, what is in progress or open, and the way out."""
    ledger = Ledger()
    first, second, third = (ledger.change("requested") for _ in range(3))
    incident = f"INC-{ledger.incident('P3', 'data', 'minor', 'fix')}"
    for item in (first, second):
        ledger.record(backlog.draft_start(ledger.entries, alpenhof, item, by="ana", now=T0))
    with pytest.raises(Refused) as wip:
        backlog.draft_start(ledger.entries, alpenhof, third, by="ana", now=T0)
    assert str(wip.value) == (
        f"alpenhof's WIP cap (backlog.wip_cap) is 2: 2 item(s) in progress ({first}, {second}); "
        "finish one (backlog done ITEM) or have the client deprioritise one "
        "(backlog deprioritise ITEM --by WHO --note TEXT)"
    )
    tight = replace_cap(alpenhof, "backlog.open_cap", 4)
    with pytest.raises(Refused) as full:
        backlog.check_room_for(ledger.entries, tight, "alpenhof")
    assert str(full.value) == (
        f"alpenhof's backlog is full: 4 open item(s), the open-items cap (backlog.open_cap) "
        f"is 4 ({incident}, {first}, {second}, {third}); finish one or have the client "
        "deprioritise one (backlog deprioritise ITEM --by WHO --note TEXT)"
    )
    with pytest.raises(BadInput) as done_change:
        backlog.draft_done(ledger.entries, alpenhof, first, by="ana", note="", now=T0)
    assert str(done_change.value) == (
        f"{first} is a change: it leaves the backlog when the client accepts or rejects it "
        f"(change accept {first} --by WHO)"
    )
    with pytest.raises(BadInput) as done_incident:
        backlog.draft_done(ledger.entries, alpenhof, incident, by="ana", note="", now=T0)
    assert str(done_incident.value) == (
        f"{incident} is an incident follow-up: it leaves the backlog once the incident is "
        f"fixed and its post-mortem recorded (incident fix / incident postmortem {incident})"
    )
    ledger.record(
        backlog.draft_deprioritise(ledger.entries, alpenhof, third, by="Anna", note="n", now=T0)
    )
    decision = ledger.entries[-2].seq
    with pytest.raises(BadInput) as parked:
        backlog.draft_start(ledger.entries, alpenhof, third, by="ana", now=T0)
    assert str(parked.value) == (
        f"{third} was deprioritised by the client (DEC-{decision}): it is not started unless "
        f"the client takes it back (backlog reprioritise {third} --by WHO --note TEXT)"
    )
    with pytest.raises(BadInput) as again:
        backlog.draft_start(ledger.entries, alpenhof, first, by="ana", now=T0)
    assert str(again.value) == f"{first} is already in progress (started by ana)"
    # With nothing open or in progress, the listing says so.
    empty = Ledger()
    with pytest.raises(Refused, match=r"\(none\)"):
        backlog.check_room_for(empty.entries, replace_cap(alpenhof, "backlog.open_cap", 0), "x")


def replace_cap(policy: Policy, setting: str, value: int) -> Policy:
    """Return the policy with one cap set (a contract would tighten it the same way)."""
    values = dict(policy.values)
    values[setting] = PolicyValue(value, "contract")
    return dataclasses.replace(policy, values=values)


def test_items_of_the_same_instant_are_ordered_by_seq(alpenhof: Policy) -> None:
    """Entries of one instant (one transaction) keep the ledger's order: seq 9 before
    seq 10, although "CHG-10" sorts before "CHG-9" as text."""
    ledger = Ledger()
    for _ in range(8):
        ledger.add("note", {"text": "filler"})
    same = T0 + timedelta(hours=1)
    ninth = ledger.add(
        "change-requested", {"title": "a", "description": "d", "requested_by": "A"}, same
    )
    tenth = ledger.add(
        "change-requested", {"title": "b", "description": "d", "requested_by": "A"}, same
    )
    incident_payload = {
        "title": "t",
        "impact": "data",
        "criticality": "minor",
        "severity": "P3",
        "host": None,
        "reported_by": None,
        "ticket": None,
    }
    for _ in range(87):
        ledger.add("note", {"text": "filler"})
    first = ledger.add("incident-opened", incident_payload, same)
    second = ledger.add("incident-opened", incident_payload, same)
    assert (first.seq, second.seq) == (98, 99)
    for opened in (first, second):
        for kind in ("incident-acknowledged", "incident-mitigated"):
            ledger.add(kind, {"incident": opened.seq, "note": "step"})
    third = ledger.add("incident-opened", incident_payload, same)
    for kind in ("incident-acknowledged", "incident-mitigated"):
        ledger.add(kind, {"incident": third.seq, "note": "step"})
    assert third.seq == 104
    assert ids(backlog_of(ledger.entries, alpenhof)) == [
        "INC-98",
        "INC-99",
        "INC-104",
        f"CHG-{ninth.seq}",
        f"CHG-{tenth.seq}",
    ]


def test_a_post_mortem_action_is_as_old_as_its_post_mortem_to_the_seq(alpenhof: Policy) -> None:
    """A post-mortem action's age is its post-mortem entry's, seq included: of two
    post-mortems recorded at one instant, the one recorded first (seq 9) has its action
    first, although its incident was opened later and "ACT-10.1" sorts before "ACT-9.1"
    as text."""
    ledger = Ledger()
    older = ledger.incident("P1", "availability", "critical", "resolved")  # seqs 1 to 4
    newer = ledger.incident("P1", "availability", "critical", "resolved")  # seqs 5 to 8
    same = T0 + timedelta(hours=1)
    for incident in (newer, older):
        ledger.add(
            "incident-postmortem",
            {"incident": incident, "file": "pm.md", "sections": {}, "actions": ["Rotate logs"]},
            same,
        )
    # The newer incident's post-mortem is seq 9, the older one's seq 10.
    assert ids(backlog_of(ledger.entries, alpenhof)) == ["ACT-9.1", "ACT-10.1"]


def test_an_item_id_names_its_prefix_and_creating_seq() -> None:
    assert backlog.parse_item_id(" act-12.3 ") == ("ACT", 12)
    assert backlog.parse_item_id("CHG-7") == ("CHG", 7)
    assert backlog.parse_item_id("inc-40") == ("INC", 40)


def test_done_needs_a_name(alpenhof: Policy) -> None:
    ledger = Ledger()
    postmortem = ledger.postmortem(ledger.incident("P1", "data", "critical", "resolved"), ["a"])
    with pytest.raises(BadInput, match=r"^--by is empty$"):
        backlog.draft_done(ledger.entries, alpenhof, f"ACT-{postmortem}.1", by=" ", note="", now=T0)
