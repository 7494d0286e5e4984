"""A change's state machine, driven through the pure module with an injected clock:
every step from every state, the out-of-scope flag and its client decision, the
estimate cap, windows and freezes (read in the client's time zone), the approval a
deploy needs, and the client's acceptance after deployment only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from support.service import STORY_START, ChangeStory

from webmg_ops.config.clients import Client, load_client
from webmg_ops.config.contract import Scope
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import NewEntry
from webmg_ops.service import changes
from webmg_ops.service.changes import ChangeState
from webmg_ops.service.decisions import DECISION_RECORDED

T0 = STORY_START  # a Monday, in winter time (CET = UTC+1): where each story starts
HOTEL_SCOPE = Scope(
    included=["booking site", "offer pages"], excluded=["channel manager", "e-mail"]
)
CHANGE = "CHG-1"


@pytest.fixture
def alpenhof(inventories: Path) -> Client:
    """The demo hotel: windows Tue and Thu 23:00 for 3 h (Europe/Vienna), a Christmas
    freeze (20 Dec - 6 Jan) and the hotel sector's summer freeze (1 Jul - 31 Aug)."""
    return load_client(inventories, "alpenhof")


def _schedule(
    story: ChangeStory,
    client: Client,
    *,
    now: datetime = T0,
    window: str | None = None,
    at: str | None = None,
) -> NewEntry:
    return changes.draft_schedule(
        story.entries,
        CHANGE,
        window_name=window,
        at=at,
        windows=client.contract.windows,
        freezes=client.policy.freezes,
        now=now,
    )


def story_in(state: ChangeState, client: Client) -> ChangeStory:
    """Return a change brought to ``state`` by the steps of the flow."""
    story = ChangeStory()
    story.add(
        changes.draft_request("alpenhof", title="Newsletter box", description="d", requested_by="A")
    )
    steps: list[tuple[ChangeState, Callable[[], NewEntry]]] = [
        (
            ChangeState.SCOPED,
            lambda: changes.draft_scope(
                story.entries,
                CHANGE,
                included=["offer pages"],
                excluded=[],
                contract_scope=HOTEL_SCOPE,
            ),
        ),
        (
            ChangeState.ESTIMATED,
            lambda: changes.draft_estimate(
                story.entries, CHANGE, hours=2, risk="low", rollback=None, cap=timedelta(hours=8)
            ),
        ),
        (ChangeState.SCHEDULED, lambda: _schedule(story, client, window="tuesday night")),
        (
            ChangeState.APPROVED,
            lambda: changes.draft_approval(story.entries, CHANGE, by="Anna", note=""),
        ),
        # Written by the deploy action, later: the state is modelled here.
        (
            ChangeState.DEPLOYED,
            lambda: NewEntry(changes.CHANGE_DEPLOYED, "alpenhof", {"change": CHANGE}),
        ),
    ]
    for reached, step in steps:
        if story.change.state is state:
            return story
        story.add(step())
        assert story.change.state is reached
    if state in (ChangeState.ACCEPTED, ChangeState.REJECTED):
        story.add(
            changes.draft_acceptance(
                story.entries, CHANGE, by="Anna", rejected=state is ChangeState.REJECTED, note="n"
            )
        )
    assert story.change.state is state
    return story


# The flow's order, as the service defines it: each step may start from these states only
# (a step may be repeated until the next one is taken; a schedule approved is fixed).
EXPECTED_FROM = {
    "scope": {ChangeState.REQUESTED, ChangeState.SCOPED},
    "estimate": {ChangeState.SCOPED, ChangeState.ESTIMATED},
    "schedule": {ChangeState.ESTIMATED, ChangeState.SCHEDULED},
    "approve": {ChangeState.SCHEDULED},
    "accept": {ChangeState.DEPLOYED},
}


def _take(step: str, story: ChangeStory, client: Client) -> NewEntry:
    if step == "scope":
        return changes.draft_scope(
            story.entries, CHANGE, included=["offer pages"], excluded=[], contract_scope=HOTEL_SCOPE
        )
    if step == "estimate":
        return changes.draft_estimate(
            story.entries, CHANGE, hours=1, risk="low", rollback=None, cap=None
        )
    if step == "schedule":
        return _schedule(story, client, window="thursday night")
    if step == "approve":
        return changes.draft_approval(story.entries, CHANGE, by="Anna", note="")
    return changes.draft_acceptance(story.entries, CHANGE, by="Anna", rejected=False, note=None)


@pytest.mark.parametrize("state", list(ChangeState))
@pytest.mark.parametrize("step", sorted(EXPECTED_FROM))
def test_each_step_is_taken_only_from_its_states(
    alpenhof: Client, state: ChangeState, step: str
) -> None:
    """A step out of order (accept before deploy, approve before schedule...) is bad input
    naming the change's state; in order, it drafts one entry for the change."""
    story = story_in(state, alpenhof)
    if state in EXPECTED_FROM[step]:
        drafted = _take(step, story, alpenhof)
        assert drafted.payload["change"] == CHANGE
    else:
        with pytest.raises(BadInput, match=f"CHG-1 is {state.value}: {step} needs"):
            _take(step, story, alpenhof)


def test_accept_before_deploy_is_refused_and_after_it_records_the_clients_act(
    alpenhof: Client,
) -> None:
    """Acceptance is the client's functional validation of what was deployed."""
    story = story_in(ChangeState.APPROVED, alpenhof)
    with pytest.raises(BadInput, match="CHG-1 is approved: accept needs a change that is deployed"):
        changes.draft_acceptance(story.entries, CHANGE, by="Anna", rejected=False, note=None)
    story.add(NewEntry(changes.CHANGE_DEPLOYED, "alpenhof", {"change": CHANGE}))
    with pytest.raises(BadInput, match="--rejected needs --note"):
        changes.draft_acceptance(story.entries, CHANGE, by="Anna", rejected=True, note=" ")
    rejection = changes.draft_acceptance(
        story.entries, CHANGE, by="Anna Gruber", rejected=True, note="box overlaps the menu"
    )
    assert (rejection.kind, rejection.payload) == (
        changes.CHANGE_REJECTED,
        {"change": CHANGE, "by": "Anna Gruber", "party": "client", "note": "box overlaps the menu"},
    )
    story.add(rejection)
    assert story.change.state is ChangeState.REJECTED
    assert story.change.accepted_by == "Anna Gruber"


def test_a_scope_naming_an_excluded_item_is_flagged_and_waits_for_the_clients_decision(
    alpenhof: Client,
) -> None:
    """`e-mail` is excluded by the contract: a scope line naming it (whole words, any case)
    flags the change; the estimate is refused until the client's decision, recorded with
    the acceptance in one transaction."""
    story = story_in(ChangeState.REQUESTED, alpenhof)
    scope = changes.draft_scope(
        story.entries,
        CHANGE,
        included=["offer pages", "sign-up form sending  E-Mail"],
        excluded=["booking site"],
        contract_scope=HOTEL_SCOPE,
    )
    assert scope.payload == {
        "change": CHANGE,
        "in": ["offer pages", "sign-up form sending E-Mail"],
        "out": ["booking site"],
        "out_of_scope": ["e-mail"],
    }
    story.add(scope)
    assert story.change.blocked_out_of_scope
    with pytest.raises(Refused, match=r"excludes \(e-mail\).*accept-out-of-scope CHG-1"):
        changes.draft_estimate(story.entries, CHANGE, hours=1, risk="low", rollback=None, cap=None)
    decision, acceptance = story.add(
        changes.draft_out_of_scope_acceptance(
            story.entries, CHANGE, by="Anna Gruber (owner)", note="worth it for the season"
        )
    )
    assert (decision.kind, decision.payload["party"], decision.payload["subject"]) == (
        DECISION_RECORDED,
        "client",
        CHANGE,
    )
    assert acceptance.payload == {
        "change": CHANGE,
        "by": "Anna Gruber (owner)",
        "items": ["e-mail"],
    }
    assert story.change.out_of_scope_decision == f"DEC-{decision.seq}"
    assert not story.change.blocked_out_of_scope
    with pytest.raises(BadInput, match="accepted by DEC-"):
        changes.draft_out_of_scope_acceptance(story.entries, CHANGE, by="Anna", note="again")
    changes.draft_estimate(story.entries, CHANGE, hours=1, risk="low", rollback=None, cap=None)
    # A new scope is a new question: the earlier acceptance covered another scope.
    story.add(
        changes.draft_scope(
            story.entries,
            CHANGE,
            included=["e-mail relay"],
            excluded=[],
            contract_scope=HOTEL_SCOPE,
        )
    )
    assert story.change.blocked_out_of_scope


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("move e-mail to a new host", True),
        ("E-MAIL", True),
        ("the channel   manager sync", True),
        ("mail server", False),  # "e-mail" is not in it as whole words
        ("e-mailing list", False),
        ("channel", False),
    ],
)
def test_an_excluded_item_is_named_as_whole_words(line: str, named: bool) -> None:
    """Matching ignores case and spacing but not word boundaries."""
    assert bool(changes.excluded_items_named([line], HOTEL_SCOPE)) is named


def test_a_change_within_scope_has_nothing_to_accept(alpenhof: Client) -> None:
    story = story_in(ChangeState.SCOPED, alpenhof)
    with pytest.raises(BadInput, match="within the contract's scope"):
        changes.draft_out_of_scope_acceptance(story.entries, CHANGE, by="Anna", note="n")


@pytest.mark.parametrize(
    ("cap_hours", "hours", "allowed"),
    [(8, 8, True), (8, 8.25, False), (16, 16, True), (16, 16.5, False)],
)
def test_the_estimate_is_capped_and_a_larger_change_must_be_split(
    alpenhof: Client, cap_hours: int, hours: float, allowed: bool
) -> None:
    """Up to the cap the estimate is recorded; past it, refused with "split the change"."""
    story = story_in(ChangeState.SCOPED, alpenhof)

    def estimate() -> NewEntry:
        return changes.draft_estimate(
            story.entries,
            CHANGE,
            hours=hours,
            risk="medium",
            rollback="restore the previous package",
            cap=timedelta(hours=cap_hours),
        )

    if allowed:
        assert estimate().payload == {
            "change": CHANGE,
            "hours": hours,
            "risk": "medium",
            "rollback": "restore the previous package",
        }
    else:
        with pytest.raises(Refused, match=f"{hours:g} h is more than the {cap_hours}h.*split"):
            estimate()


@pytest.mark.parametrize(
    ("hours", "risk", "rollback", "message"),
    [
        (0, "low", None, "--hours 0 must be more than 0"),
        (-2, "low", None, "--hours -2 must be more than 0"),
        (1, "severe", None, "--risk 'severe'"),
        (1, "low", "  ", "--rollback is empty"),
    ],
)
def test_a_bad_estimate_is_bad_input(
    alpenhof: Client, hours: float, risk: str, rollback: str | None, message: str
) -> None:
    story = story_in(ChangeState.SCOPED, alpenhof)
    with pytest.raises(BadInput, match=message):
        changes.draft_estimate(
            story.entries, CHANGE, hours=hours, risk=risk, rollback=rollback, cap=None
        )


@pytest.mark.parametrize(
    ("at", "scheduled_utc", "window"),
    [
        # Tuesday 3 March 2026, 23:30 local (CET, +01:00) = 22:30 UTC.
        ("2026-03-03T23:30+01:00", datetime(2026, 3, 3, 22, 30, tzinfo=UTC), "tuesday night"),
        # The same instant given with an offset.
        ("2026-03-03T22:30+00:00", datetime(2026, 3, 3, 22, 30, tzinfo=UTC), "tuesday night"),
        # The last minute of the Thursday window (23:00 + 3 h, across midnight).
        ("2026-03-06T01:59+01:00", datetime(2026, 3, 6, 0, 59, tzinfo=UTC), "thursday night"),
    ],
)
def test_a_time_inside_a_window_is_scheduled(
    alpenhof: Client, at: str, scheduled_utc: datetime, window: str
) -> None:
    assert date(2026, 3, 3).weekday() == 1  # a Tuesday
    story = story_in(ChangeState.ESTIMATED, alpenhof)
    drafted = _schedule(story, alpenhof, at=at)
    assert datetime.fromisoformat(drafted.payload["at"]) == scheduled_utc
    assert drafted.payload["window"] == window
    assert drafted.payload["timezone"] == "Europe/Vienna"
    story.add(drafted)
    assert story.change.scheduled_at == scheduled_utc


@pytest.mark.parametrize(
    ("at", "message"),
    [
        # The Thursday window closes at 02:00 (half-open): 02:00 is outside.
        (
            "2026-03-06T02:00+01:00",
            "outside every maintenance window; the next opening is 2026-03-10 23:00",
        ),
        (
            "2026-03-03T12:00+01:00",
            "outside every maintenance window; the next opening is 2026-03-03 23:00",
        ),
        # Tuesday 7 July 2026 at night (CEST): inside the hotel sector's summer freeze.
        ("2026-07-07T23:30+02:00", "inside the freeze 'summer season'"),
        # Tuesday 22 December 2026 at night: inside the contract's Christmas freeze.
        ("2026-12-22T23:30+01:00", "inside the freeze 'christmas and new year'"),
    ],
)
def test_a_time_outside_every_window_or_inside_a_freeze_is_refused(
    alpenhof: Client, at: str, message: str
) -> None:
    assert date(2026, 7, 7).weekday() == 1 and date(2026, 12, 22).weekday() == 1
    story = story_in(ChangeState.ESTIMATED, alpenhof)
    with pytest.raises(Refused, match=message):
        _schedule(story, alpenhof, at=at)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Monday 2 March: the next Tuesday night, 23:00 CET.
        (T0, datetime(2026, 3, 3, 22, 0, tzinfo=UTC)),
        # During the Tuesday window: now, while it is open.
        (datetime(2026, 3, 3, 23, 0, tzinfo=UTC), datetime(2026, 3, 3, 23, 0, tzinfo=UTC)),
        # Monday 21 December: 22 and 29 December and 5 January are frozen; 12 January is not.
        (datetime(2026, 12, 21, 10, 0, tzinfo=UTC), datetime(2027, 1, 12, 22, 0, tzinfo=UTC)),
        # 1 July: July and August are the summer freeze; Tuesday 1 September, 23:00 CEST.
        (datetime(2026, 7, 1, 10, 0, tzinfo=UTC), datetime(2026, 9, 1, 21, 0, tzinfo=UTC)),
    ],
)
def test_a_named_window_takes_its_next_opening_outside_freezes(
    alpenhof: Client, now: datetime, expected: datetime
) -> None:
    assert date(2027, 1, 12).weekday() == 1 and date(2026, 9, 1).weekday() == 1
    story = story_in(ChangeState.ESTIMATED, alpenhof)
    drafted = _schedule(story, alpenhof, now=now, window="tuesday night")
    assert datetime.fromisoformat(drafted.payload["at"]) == expected


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({}, "either --window NAME or --at TIME"),
        ({"window": "tuesday night", "at": "2026-03-03T23:30Z"}, "either --window NAME or --at"),
        ({"window": "sunday brunch"}, "no window 'sunday brunch' .*tuesday night, thursday night"),
        ({"at": "next tuesday"}, "--at 'next tuesday' is not an ISO 8601 time"),
        ({"at": "2026-13-01T23:00"}, "is not an ISO 8601 time"),
        ({"at": "2026-03-01T23:30+01:00"}, "--at '2026-03-01T23:30\\+01:00' is in the past"),
        # Local time, UTC or the controller's: a time without its offset is not guessed.
        ({"at": "2026-03-03T23:30"}, "--at '2026-03-03T23:30' needs a UTC offset"),
    ],
)
def test_a_bad_schedule_is_bad_input(alpenhof: Client, how: dict[str, str], message: str) -> None:
    story = story_in(ChangeState.ESTIMATED, alpenhof)
    with pytest.raises(BadInput, match=message):
        _schedule(story, alpenhof, window=how.get("window"), at=how.get("at"))


def test_the_deploy_needs_the_approval_where_the_policy_requires_it(alpenhof: Client) -> None:
    """Institutional-sla (and government) require an approval before a deploy; other levels
    may deploy a scheduled change; an unscheduled one never."""
    scheduled = story_in(ChangeState.SCHEDULED, alpenhof).change
    changes.check_deployable(scheduled, approval_required=False)
    with pytest.raises(Refused, match="requires an approval before CHG-1 is deployed"):
        changes.check_deployable(scheduled, approval_required=True)
    approved = story_in(ChangeState.APPROVED, alpenhof)
    changes.check_deployable(approved.change, approval_required=True)
    (approval,) = [entry for entry in approved.entries if entry.kind == "approval"]
    # The approval is the one a deploy run consumes: an approval for the action deploy.
    assert approval.payload == {"action": "deploy", "by": "Anna", "note": "", "change": CHANGE}
    assert approved.change.approval_seq == approval.seq
    with pytest.raises(BadInput, match="CHG-1 is estimated: deploy needs"):
        changes.check_deployable(story_in(ChangeState.ESTIMATED, alpenhof).change, False)


def test_an_unknown_change_and_other_items_approvals_are_not_changes(alpenhof: Client) -> None:
    story = story_in(ChangeState.SCHEDULED, alpenhof)
    # A run's approval names no change: it moves no change.
    story.add(NewEntry("approval", "alpenhof", {"action": "update", "by": "A", "note": "n"}))
    assert story.change.state is ChangeState.SCHEDULED
    with pytest.raises(BadInput, match="unknown change CHG-99"):
        changes.draft_approval(story.entries, "CHG-99", by="A", note="")
