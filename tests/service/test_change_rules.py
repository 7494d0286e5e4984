"""A change's rules through the pure module, each compared in full: the document a change
is shown as at each step (what ``change show --json`` prints), what a deploy run does to
the change's approval, and every refusal's whole message, as the operator reads it.

Expected documents and messages are written out by hand from the rules in the module's
docstring and the demo hotel's contract (windows Tue and Thu 23:00 for 3 h in
Europe/Vienna, the Christmas freeze, the hotel sector's summer freeze; ``e-mail`` and
``channel manager`` out of scope).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.change_runs import run_started
from support.clock import controller_zone
from support.run_entries import ACTOR
from support.service import STORY_START, ChangeStory

from webmg_ops.config.clients import Client, load_client
from webmg_ops.config.contract import Freeze, Window
from webmg_ops.config.policy import PolicyFreeze
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import NewEntry
from webmg_ops.service import changes
from webmg_ops.service.changes import ChangeState

T0 = STORY_START  # Monday 2 March 2026, 10:00 UTC (11:00 in Vienna, CET)
CHANGE = "CHG-1"
FREEZE_REASON = "winter season opening and holiday bookings"
SUMMER_REASON = "peak season: bookings and offer pages must not be disturbed"


@pytest.fixture
def alpenhof(inventories: Path) -> Client:
    return load_client(inventories, "alpenhof")


def minute(n: int) -> str:
    """Return the instant a story's n-th entry is stored at (one a minute from T0)."""
    return (T0 + timedelta(minutes=n)).isoformat()


def message(raised: pytest.ExceptionInfo[Exception]) -> str:
    return str(raised.value)


def requested(deploys: tuple[str, ...] = ("webmg-demo-app=1.1",)) -> ChangeStory:
    story = ChangeStory()
    story.add(
        changes.draft_request(
            "alpenhof",
            title=" Booking app 1.1 ",
            description="New calendar",
            requested_by="Anna Gruber",
            deploys=deploys,
        )
    )
    return story


def scope(story: ChangeStory, client: Client, *included: str, **options: Any) -> NewEntry:
    return changes.draft_scope(
        story.entries,
        CHANGE,
        included=list(included),
        excluded=options.get("excluded", []),
        contract_scope=client.contract.scope,
        deploys=options.get("deploys", ()),
    )


def estimate(story: ChangeStory, hours: float = 2, **options: Any) -> NewEntry:
    return changes.draft_estimate(
        story.entries,
        CHANGE,
        hours=hours,
        risk=options.get("risk", "low"),
        rollback=options.get("rollback"),
        cap=options.get("cap"),
    )


def schedule(
    story: ChangeStory,
    client: Client,
    *,
    window: str | None = None,
    at: str | None = None,
    now: datetime = T0,
    windows: list[Window] | None = None,
    freezes: tuple[PolicyFreeze, ...] | None = None,
) -> NewEntry:
    return changes.draft_schedule(
        story.entries,
        CHANGE,
        window_name=window,
        at=at,
        windows=client.contract.windows if windows is None else windows,
        freezes=client.policy.freezes if freezes is None else freezes,
        now=now,
    )


def estimated(client: Client) -> ChangeStory:
    story = requested()
    story.add(scope(story, client, "booking site"))
    story.add(estimate(story))
    return story


def scheduled(client: Client) -> ChangeStory:
    story = estimated(client)
    story.add(schedule(story, client, window="tuesday night"))
    return story


def history(*steps: tuple[int, str, int]) -> list[dict[str, Any]]:
    """Given (seq, kind, minute) per step, return the document's history."""
    return [{"seq": seq, "kind": kind, "at": minute(at), "actor": ACTOR} for seq, kind, at in steps]


# --- the document -----------------------------------------------------------------


def test_a_requested_change_is_shown_with_nothing_but_its_request() -> None:
    story = requested()
    assert story.change.document() == {
        "id": CHANGE,
        "client": "alpenhof",
        "title": "Booking app 1.1",
        "description": "New calendar",
        "requested_by": "Anna Gruber",
        "requested_at": "2026-03-02T10:00:00+00:00",
        "state": "requested",
        "scope": {"in": [], "out": []},
        "out_of_scope": [],
        "out_of_scope_decision": None,
        "blocked": False,
        "estimate": None,
        "scheduled_at": None,
        "window": None,
        "approved_by": None,
        "approval_seq": None,
        "deploys": {"webmg-demo-app": "1.1"},
        "deploy_runs": [],
        "deployed_seq": None,
        "deployed_run": None,
        "accepted_by": None,
        "acceptance_note": None,
        "history": history((1, "change-requested", 0)),
    }


def test_a_change_is_shown_as_every_step_left_it(alpenhof: Client) -> None:
    """Out of scope and accepted by the client, estimated, scheduled, approved, consumed by
    a failed deploy, approved again, deployed by a second run and accepted."""
    story = requested()
    story.add(
        scope(
            story,
            alpenhof,
            "booking  site",
            "E-Mail notice",
            "channel manager sync",
            excluded=["offer pages"],
            deploys=["webmg-demo-app=1.2", "webmg-demo-tools=2.0"],
        )
    )
    blocked = story.change.document()
    assert (blocked["state"], blocked["out_of_scope"], blocked["blocked"]) == (
        "scoped",
        ["channel manager", "e-mail"],  # in the contract's order
        True,
    )
    story.add(
        changes.draft_out_of_scope_acceptance(
            story.entries, CHANGE, by="Anna Gruber", note="worth it"
        )
    )  # the decision is entry 3, the acceptance entry 4
    story.add(estimate(story, 3, risk="medium", rollback="reinstall 1.1"))  # 5
    story.add(schedule(story, alpenhof, window="tuesday night"))  # 6
    story.add(changes.draft_approval(story.entries, CHANGE, by="Anna Gruber", note="go"))  # 7
    story.add(run_started("run-a", 7))  # 8: fails, the approval is used
    story.add(changes.draft_approval(story.entries, CHANGE, by="Jonas Maier", note=""))  # 9
    story.add(run_started("run-b", 9))  # 10
    versions = {"web1": {"webmg-demo-app": {"before": "1.1", "after": "1.2"}}}
    story.add(changes.draft_deployed(story.change, run_id="run-b", versions=versions))  # 11
    story.add(
        changes.draft_acceptance(
            story.entries, CHANGE, by="Anna Gruber", rejected=False, note=" fine on mobile "
        )
    )  # 12
    assert story.change.document() == {
        "id": CHANGE,
        "client": "alpenhof",
        "title": "Booking app 1.1",
        "description": "New calendar",
        "requested_by": "Anna Gruber",
        "requested_at": "2026-03-02T10:00:00+00:00",
        "state": "accepted",
        "scope": {
            "in": ["booking site", "E-Mail notice", "channel manager sync"],
            "out": ["offer pages"],
        },
        "out_of_scope": ["channel manager", "e-mail"],
        "out_of_scope_decision": "DEC-3",
        "blocked": False,
        "estimate": {"hours": 3.0, "risk": "medium", "rollback": "reinstall 1.1"},
        # Tuesday 3 March, 23:00 in Vienna (CET).
        "scheduled_at": "2026-03-03T22:00:00+00:00",
        "window": "tuesday night",
        # Used up by run-b, which deployed the change.
        "approved_by": None,
        "approval_seq": None,
        "deploys": {"webmg-demo-app": "1.2", "webmg-demo-tools": "2.0"},
        "deploy_runs": ["run-a", "run-b"],
        "deployed_seq": 11,
        "deployed_run": "run-b",
        "accepted_by": "Anna Gruber",
        "acceptance_note": "fine on mobile",
        # The decision is the client's (decision list), not a step of the change.
        "history": history(
            (1, "change-requested", 0),
            (2, "change-scoped", 1),
            (4, "change-out-of-scope-accepted", 2),
            (5, "change-estimated", 4),
            (6, "change-scheduled", 5),
            (7, "approval", 6),
            (8, "run-started", 7),
            (9, "approval", 8),
            (10, "run-started", 9),
            (11, "change-deployed", 10),
            (12, "change-accepted", 11),
        ),
    }


def test_an_estimate_without_rollback_and_a_rejection_are_shown(alpenhof: Client) -> None:
    story = scheduled(alpenhof)
    story.add(NewEntry(changes.CHANGE_DEPLOYED, "alpenhof", {"change": CHANGE}))
    story.add(
        changes.draft_acceptance(
            story.entries, CHANGE, by="Anna", rejected=True, note="box hides the menu"
        )
    )
    shown = story.change.document()
    assert shown["estimate"] == {"hours": 2.0, "risk": "low", "rollback": None}
    assert (shown["state"], shown["accepted_by"], shown["acceptance_note"]) == (
        "rejected",
        "Anna",
        "box hides the menu",
    )
    # A change-deployed written without its run (older entries) names none.
    assert (shown["deployed_seq"], shown["deployed_run"]) == (5, None)


# --- folding entries ---------------------------------------------------------------


def test_changes_are_listed_in_request_order_and_read_only_their_own_entries(
    alpenhof: Client,
) -> None:
    story = requested(deploys=())
    story.add(
        changes.draft_request("alpenhof", title="Second", description="d2", requested_by="Jonas")
    )
    # Entries naming an unknown change, or no change, move nothing.
    story.add(NewEntry(changes.CHANGE_SCOPED, "alpenhof", {"change": "CHG-99", "in": []}))
    story.add(NewEntry("approval", "alpenhof", {"action": "update", "by": "A", "note": ""}))
    story.add(
        NewEntry(
            changes.CHANGE_SCOPED,
            "alpenhof",
            {"change": "CHG-2", "in": ["offer pages"], "out": [], "out_of_scope": []},
        )
    )
    found = changes.changes_of(story.entries)
    assert list(found) == ["CHG-1", "CHG-2"]
    first, second = found.values()
    assert (first.state, first.deploys, first.history) == (
        ChangeState.REQUESTED,
        (),
        ((1, "change-requested", minute(0), ACTOR),),
    )
    assert (second.id, second.client, second.title, second.description) == (
        "CHG-2",
        "alpenhof",
        "Second",
        "d2",
    )
    assert (second.requested_by, second.requested_at) == ("Jonas", T0 + timedelta(minutes=1))
    assert (second.state, second.scope_in) == (ChangeState.SCOPED, ("offer pages",))
    assert [seq for seq, *_ in second.history] == [2, 5]
    with pytest.raises(BadInput) as raised:
        changes.find_change(story.entries, "CHG-3")
    assert message(raised) == "unknown change CHG-3"


def test_a_deploy_run_under_the_changes_approval_uses_it_up(alpenhof: Client) -> None:
    """Whatever its outcome; a run under no approval, or another one, or a dry run uses
    nothing (a dry run is not even one of the change's runs)."""
    story = scheduled(alpenhof)
    # Scheduled, not approved: a run naming an approval does not make it one.
    story.add(run_started("unapproved", 4))
    assert (story.change.state, story.change.deploy_runs) == (
        ChangeState.SCHEDULED,
        ("unapproved",),
    )
    story.add(changes.draft_approval(story.entries, CHANGE, by="Anna", note=""))  # seq 6
    assert story.change.approval_seq == 6
    story.add(run_started("dry", 6, check=True))
    story.add(run_started("no approval", None))
    story.add(run_started("other approval", 5))
    kept = story.change
    assert (kept.state, kept.approved_by, kept.approval_seq) == (ChangeState.APPROVED, "Anna", 6)
    shown = kept.document()
    assert (shown["state"], shown["approved_by"], shown["approval_seq"]) == ("approved", "Anna", 6)
    assert shown["deploy_runs"] == ["unapproved", "no approval", "other approval"]
    assert kept.deploy_runs == ("unapproved", "no approval", "other approval")
    # The dry run (seq 7) is no step of the change.
    assert [seq for seq, *_ in kept.history] == [1, 2, 3, 4, 5, 6, 8, 9]
    story.add(run_started("real", 6))
    used = story.change
    assert (used.state, used.approved_by, used.approval_seq) == (ChangeState.SCHEDULED, None, None)
    assert used.deploy_runs == ("unapproved", "no approval", "other approval", "real")
    assert used.document()["approval_seq"] is None


def test_a_dry_run_does_not_hide_the_entries_after_it(alpenhof: Client) -> None:
    story = scheduled(alpenhof)
    story.add(run_started("dry", None, check=True))
    story.add(changes.draft_approval(story.entries, CHANGE, by="Anna", note=""))
    assert story.change.state is ChangeState.APPROVED


def test_the_clients_acceptance_of_an_out_of_scope_change_is_its_decision(
    alpenhof: Client,
) -> None:
    story = requested()
    story.add(scope(story, alpenhof, "e-mail relay", "channel manager"))
    with pytest.raises(BadInput) as raised:
        changes.draft_out_of_scope_acceptance(story.entries, "CHG-1", by=" ", note="n")
    assert message(raised) == "--by is empty"
    with pytest.raises(BadInput) as raised:
        changes.draft_out_of_scope_acceptance(story.entries, "CHG-1", by="Anna", note=" ")
    assert message(raised) == "--note is empty"
    decision, acceptance = changes.draft_out_of_scope_acceptance(
        story.entries, CHANGE, by=" Anna Gruber ", note=" for the season "
    )
    assert (decision.kind, decision.client, decision.payload) == (
        "decision-recorded",
        "alpenhof",
        {
            "title": "CHG-1 accepted although out of scope: channel manager, e-mail",
            "by": "Anna Gruber",
            "party": "client",
            "note": "for the season",
            "subject": CHANGE,
        },
    )
    assert (acceptance.kind, acceptance.client, acceptance.payload) == (
        "change-out-of-scope-accepted",
        "alpenhof",
        {"change": CHANGE, "by": "Anna Gruber", "items": ["channel manager", "e-mail"]},
    )
    story.add([decision, acceptance])
    assert story.change.out_of_scope_decision == "DEC-3"
    with pytest.raises(BadInput) as raised:
        changes.draft_out_of_scope_acceptance(story.entries, CHANGE, by="Anna", note="again")
    assert message(raised) == "CHG-1's out-of-scope items were accepted by DEC-3"
    # A new scope drops the acceptance: it covered another scope.
    story.add(scope(story, alpenhof, "e-mail relay"))
    assert (story.change.out_of_scope, story.change.out_of_scope_decision) == (("e-mail",), None)
    assert story.change.blocked_out_of_scope


def test_an_acceptance_reads_the_decision_recorded_with_it_not_another(alpenhof: Client) -> None:
    """A decision on another item, or one recorded after the acceptance, is not the
    client's decision on this change."""
    story = requested()
    story.add(scope(story, alpenhof, "e-mail relay"))
    story.add(
        NewEntry(
            "decision-recorded",
            "alpenhof",
            {"title": "t", "by": "A", "party": "client", "note": "n", "subject": "RSK-1"},
        )
    )
    story.add(
        NewEntry(
            changes.CHANGE_OUT_OF_SCOPE_ACCEPTED,
            "alpenhof",
            {"change": CHANGE, "by": "A", "items": ["e-mail"]},
        )
    )
    assert story.change.out_of_scope_decision is None
    story.add(
        NewEntry(
            "decision-recorded",
            "alpenhof",
            {"title": "t", "by": "A", "party": "client", "note": "n", "subject": CHANGE},
        )
    )
    assert story.change.out_of_scope_decision is None
    assert story.change.blocked_out_of_scope


def test_nothing_to_accept_within_scope_or_before_scoping(alpenhof: Client) -> None:
    story = requested()
    with pytest.raises(BadInput) as raised:
        changes.draft_out_of_scope_acceptance(story.entries, CHANGE, by="Anna", note="n")
    assert (
        message(raised) == "CHG-1 is requested: accept-out-of-scope needs a change that is scoped"
    )
    story.add(scope(story, alpenhof, "booking site"))
    with pytest.raises(BadInput) as raised:
        changes.draft_out_of_scope_acceptance(story.entries, CHANGE, by="Anna", note="n")
    assert message(raised) == "CHG-1 is within the contract's scope: there is nothing to accept"


# --- request and scope --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("title", "--title is empty"),
        ("description", "--description is empty"),
        ("requested_by", "--requested-by is empty"),
    ],
)
def test_a_request_needs_its_three_texts(field: str, expected: str) -> None:
    texts = {"title": "t", "description": "d", "requested_by": "r", field: "  "}
    with pytest.raises(BadInput) as raised:
        changes.draft_request("alpenhof", **texts)
    assert message(raised) == expected


def test_a_request_records_its_texts_stripped() -> None:
    drafted = changes.draft_request(
        "alpenhof", title=" t ", description="\td\n", requested_by=" Anna "
    )
    assert (drafted.kind, drafted.client, drafted.payload) == (
        "change-requested",
        "alpenhof",
        {"title": "t", "description": "d", "requested_by": "Anna"},
    )


def test_a_scope_is_recorded_with_its_items_tidied(alpenhof: Client) -> None:
    story = requested()
    drafted = scope(
        story, alpenhof, "  booking   site ", excluded=["\tchannel\nmanager "], deploys=["ab=1"]
    )
    assert (drafted.kind, drafted.client, drafted.payload) == (
        "change-scoped",
        "alpenhof",
        {
            "change": CHANGE,
            "in": ["booking site"],
            "out": ["channel manager"],
            "out_of_scope": [],
            "deploys": {"ab": "1"},
        },
    )
    # Without --deploys the request's versions stay, and the scope names none.
    assert "deploys" not in scope(story, alpenhof, "booking site").payload


@pytest.mark.parametrize(
    ("included", "excluded", "expected"),
    [
        ([], [], "--in: name at least one thing the change touches"),
        (["booking site", " "], [], "--in has an empty item"),
        (["booking site"], ["offer pages", "\t"], "--out has an empty item"),
    ],
)
def test_a_scope_needs_items(
    alpenhof: Client, included: list[str], excluded: list[str], expected: str
) -> None:
    story = requested()
    with pytest.raises(BadInput) as raised:
        scope(story, alpenhof, *included, excluded=excluded)
    assert message(raised) == expected


# --- estimate ---------------------------------------------------------------------------


def test_an_estimate_names_its_hours_risk_and_rollback(alpenhof: Client) -> None:
    story = requested()
    story.add(scope(story, alpenhof, "booking site"))
    drafted = estimate(story, 0.5, risk="high", rollback="  reinstall 1.0 ")
    assert (drafted.kind, drafted.client, drafted.payload) == (
        "change-estimated",
        "alpenhof",
        {"change": CHANGE, "hours": 0.5, "risk": "high", "rollback": "reinstall 1.0"},
    )
    # Without a cap, any size is recorded; without a rollback, none is named.
    assert estimate(story, 400, risk="medium").payload == {
        "change": CHANGE,
        "hours": 400,
        "risk": "medium",
    }


@pytest.mark.parametrize(
    ("hours", "risk", "rollback", "error", "expected"),
    [
        (0, "low", None, BadInput, "--hours 0 must be more than 0"),
        (-1.5, "low", None, BadInput, "--hours -1.5 must be more than 0"),
        (1, "severe", None, BadInput, "--risk 'severe' must be one of low, medium, high"),
        (1, "Low", None, BadInput, "--risk 'Low' must be one of low, medium, high"),
        (1, "low", " ", BadInput, "--rollback is empty"),
        (
            8.5,
            "low",
            None,
            Refused,
            "CHG-1: 8.5 h is more than the 8h one change may take at this level: split the "
            "change into smaller ones",
        ),
    ],
)
def test_a_bad_estimate_says_why(
    alpenhof: Client,
    hours: float,
    risk: str,
    rollback: str | None,
    error: type[Exception],
    expected: str,
) -> None:
    story = requested()
    story.add(scope(story, alpenhof, "booking site"))
    with pytest.raises(error) as raised:
        estimate(story, hours, risk=risk, rollback=rollback, cap=timedelta(hours=8))
    assert message(raised) == expected


def test_the_cap_is_the_largest_estimate_allowed(alpenhof: Client) -> None:
    story = requested()
    story.add(scope(story, alpenhof, "booking site"))
    assert estimate(story, 4.5, cap=timedelta(hours=4, minutes=30)).payload["hours"] == 4.5
    with pytest.raises(Refused) as raised:
        estimate(story, 4.75, cap=timedelta(hours=4, minutes=30))
    assert message(raised) == (
        "CHG-1: 4.75 h is more than the 270m one change may take at this level: split the "
        "change into smaller ones"
    )


def test_an_estimate_waits_for_the_clients_acceptance_of_an_out_of_scope_change(
    alpenhof: Client,
) -> None:
    story = requested()
    story.add(scope(story, alpenhof, "channel manager", "new e-mail host"))
    with pytest.raises(Refused) as raised:
        estimate(story)
    assert message(raised) == (
        "CHG-1 touches what the contract excludes (channel manager, e-mail): the client must "
        "accept it first (webmg-ops change accept-out-of-scope CHG-1 --by WHO --note TEXT)"
    )


# --- schedule ---------------------------------------------------------------------------


def test_a_time_in_a_window_is_scheduled_in_utc_and_the_clients_time(alpenhof: Client) -> None:
    story = estimated(alpenhof)
    # Given in UTC: 22:30 UTC is 23:30 in Vienna, inside Tuesday night.
    drafted = schedule(story, alpenhof, at="2026-03-03T22:30:00Z")
    assert (drafted.kind, drafted.client, drafted.payload) == (
        "change-scheduled",
        "alpenhof",
        {
            "change": CHANGE,
            "at": "2026-03-03T22:30:00+00:00",
            "local": "2026-03-03T23:30:00+01:00",
            "timezone": "Europe/Vienna",
            "window": "tuesday night",
        },
    )
    # Now itself is not in the past.
    now = datetime(2026, 3, 5, 22, 0, tzinfo=UTC)  # Thursday 23:00 in Vienna
    at_now = schedule(story, alpenhof, at="2026-03-05T23:00+01:00", now=now)
    assert (at_now.payload["at"], at_now.payload["window"]) == (
        "2026-03-05T22:00:00+00:00",
        "thursday night",
    )
    with pytest.raises(BadInput) as raised:
        schedule(story, alpenhof, at="2026-03-05T22:59+01:00", now=now)
    assert message(raised) == "--at '2026-03-05T22:59+01:00' is in the past"


@pytest.fixture
def controller_in_new_york() -> Iterator[None]:
    """Run the test with the controller's clock set to New York's time."""
    with controller_zone("America/New_York"):
        yield


@pytest.mark.usefixtures("controller_in_new_york")
def test_a_schedule_does_not_depend_on_the_controllers_time_zone(alpenhof: Client) -> None:
    """The instant is recorded in UTC, its local form in the client's zone; never in the
    zone of the machine that runs the command."""
    story = estimated(alpenhof)
    drafted = schedule(story, alpenhof, at="2026-03-03T23:30+01:00")
    assert (drafted.payload["at"], drafted.payload["local"]) == (
        "2026-03-03T22:30:00+00:00",
        "2026-03-03T23:30:00+01:00",
    )
    with pytest.raises(Refused) as raised:
        schedule(story, alpenhof, at="2026-03-03T12:00Z")
    assert message(raised).startswith("2026-03-03 13:00 CET is outside every maintenance window")


def test_a_window_named_is_scheduled_at_its_next_opening(alpenhof: Client) -> None:
    story = estimated(alpenhof)
    drafted = schedule(story, alpenhof, window="thursday night")
    assert drafted.payload == {
        "change": CHANGE,
        "at": "2026-03-05T22:00:00+00:00",
        "local": "2026-03-05T23:00:00+01:00",
        "timezone": "Europe/Vienna",
        "window": "thursday night",
    }


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (
            "2026-03-03T12:00+01:00",
            "2026-03-03 12:00 CET is outside every maintenance window; the next opening is "
            "2026-03-03 23:00 (tuesday night)",
        ),
        (
            "2026-03-04T01:00Z",  # Wednesday 02:00 in Vienna: Tuesday night has closed
            "2026-03-04 02:00 CET is outside every maintenance window; the next opening is "
            "2026-03-05 23:00 (thursday night)",
        ),
        (
            "2026-12-22T23:30+01:00",
            "2026-12-22 23:30 CET is inside the freeze 'christmas and new year' "
            f"({FREEZE_REASON}): choose another time",
        ),
        (
            "2026-07-07T21:30Z",
            "2026-07-07 23:30 CEST is inside the freeze 'summer season' "
            f"({SUMMER_REASON}): choose another time",
        ),
    ],
)
def test_a_time_outside_the_windows_or_in_a_freeze_is_refused_saying_why(
    alpenhof: Client, at: str, expected: str
) -> None:
    story = estimated(alpenhof)
    with pytest.raises(Refused) as raised:
        schedule(story, alpenhof, at=at)
    assert message(raised) == expected


def vienna_morning() -> Window:
    return Window.model_validate(
        {
            "name": "morning",
            "weekdays": ["wed"],
            "start": "06:00",
            "duration": "2h",
            "timezone": "Europe/Vienna",
        }
    )


def new_york_evening() -> Window:
    return Window.model_validate(
        {
            "name": "evening",
            "weekdays": ["mon"],
            "start": "20:00",
            "duration": "2h",
            "timezone": "America/New_York",
        }
    )


def test_times_are_read_in_the_first_windows_time_zone(alpenhof: Client) -> None:
    windows = [new_york_evening(), vienna_morning()]
    assert changes.client_zone(windows) == ZoneInfo("America/New_York")
    assert changes.client_zone([]) == ZoneInfo("UTC")
    story = estimated(alpenhof)
    # Monday 2 March 2026, 20:30 in New York (EST, UTC-5).
    drafted = schedule(story, alpenhof, at="2026-03-03T01:30Z", windows=windows, freezes=())
    assert drafted.payload == {
        "change": CHANGE,
        "at": "2026-03-03T01:30:00+00:00",
        "local": "2026-03-02T20:30:00-05:00",
        "timezone": "America/New_York",
        "window": "evening",
    }
    with pytest.raises(Refused) as raised:
        schedule(story, alpenhof, at="2026-03-03T12:00Z", windows=windows, freezes=())
    assert message(raised) == (
        "2026-03-03 07:00 EST is outside every maintenance window; the next opening is "
        "2026-03-04 00:00 (morning)"
    )


def test_a_client_without_windows_has_no_time_to_schedule(alpenhof: Client) -> None:
    story = estimated(alpenhof)
    with pytest.raises(Refused) as raised:
        schedule(story, alpenhof, at="2026-03-03T23:30Z", windows=[], freezes=())
    assert message(raised) == "2026-03-03 23:30 UTC is outside every maintenance window"
    with pytest.raises(BadInput) as raised:
        schedule(story, alpenhof, window="tuesday night", windows=[], freezes=())
    assert message(raised) == "alpenhof has no window 'tuesday night' (windows: none)"


def test_a_window_frozen_for_more_than_a_year_has_no_opening(alpenhof: Client) -> None:
    long_freeze = Freeze(
        name="rebuild",
        start=date(2026, 1, 1),
        end=date(2027, 12, 31),
        reason="the site is rebuilt",
    )
    story = estimated(alpenhof)
    with pytest.raises(Refused) as raised:
        schedule(
            story,
            alpenhof,
            window="thursday night",
            freezes=(PolicyFreeze(long_freeze, "contract"),),
        )
    assert message(raised) == "window 'thursday night' has no opening outside freezes within a year"


@pytest.mark.parametrize(
    ("window", "at", "expected"),
    [
        (None, None, "give either --window NAME or --at TIME"),
        ("tuesday night", "2026-03-03T23:30+01:00", "give either --window NAME or --at TIME"),
        (
            "Tuesday night",
            None,
            "alpenhof has no window 'Tuesday night' (windows: tuesday night, thursday night)",
        ),
    ],
)
def test_a_schedule_names_a_window_or_a_time(
    alpenhof: Client, window: str | None, at: str | None, expected: str
) -> None:
    story = estimated(alpenhof)
    with pytest.raises(BadInput) as raised:
        schedule(story, alpenhof, window=window, at=at)
    assert message(raised) == expected


# --- approve, deploy, accept --------------------------------------------------------------


def test_an_approval_is_for_the_changes_deploy(alpenhof: Client) -> None:
    story = scheduled(alpenhof)
    drafted = changes.draft_approval(story.entries, CHANGE, by=" Anna ", note="  go ahead ")
    assert (drafted.kind, drafted.client, drafted.payload) == (
        "approval",
        "alpenhof",
        {"action": "deploy", "by": "Anna", "note": "go ahead", "change": CHANGE},
    )
    with pytest.raises(BadInput) as raised:
        changes.draft_approval(story.entries, CHANGE, by="\t", note="go")
    assert message(raised) == "--by is empty"


def test_what_a_change_deploys_and_when(alpenhof: Client) -> None:
    story = scheduled(alpenhof)
    assert changes.deployment_of(story.change, check=False) == {"webmg-demo-app": "1.1"}
    changes.check_deployable(story.change, approval_required=False)
    with pytest.raises(Refused) as refused:
        changes.check_deployable(story.change, approval_required=True)
    assert message(refused) == (
        "alpenhof's policy requires an approval before CHG-1 is deployed: "
        "webmg-ops change approve CHG-1 --by WHO"
    )
    early = requested()
    with pytest.raises(BadInput) as raised:
        changes.deployment_of(early.change, check=False)
    assert (
        message(raised) == "CHG-1 is requested: deploy needs a change that is scheduled or approved"
    )
    assert changes.deployment_of(early.change, check=True) == {"webmg-demo-app": "1.1"}
    for check in (True, False):
        with pytest.raises(BadInput) as raised:
            changes.deployment_of(requested(deploys=()).change, check=check)
        assert message(raised) == (
            "CHG-1 names no version to deploy: webmg-ops change scope CHG-1 --in TEXT "
            "--deploys PACKAGE=VERSION"
        )


def test_the_clients_validation_after_deployment(alpenhof: Client) -> None:
    story = scheduled(alpenhof)
    with pytest.raises(BadInput) as raised:
        changes.draft_acceptance(story.entries, CHANGE, by="Anna", rejected=False, note=None)
    assert message(raised) == "CHG-1 is scheduled: accept needs a change that is deployed"
    story.add(NewEntry(changes.CHANGE_DEPLOYED, "alpenhof", {"change": CHANGE, "run_id": "r"}))
    accepted = changes.draft_acceptance(
        story.entries, CHANGE, by=" Anna ", rejected=False, note=None
    )
    assert (accepted.kind, accepted.client, accepted.payload) == (
        "change-accepted",
        "alpenhof",
        {"change": CHANGE, "by": "Anna", "party": "client", "note": ""},
    )
    for note in (None, " "):
        with pytest.raises(BadInput) as raised:
            changes.draft_acceptance(story.entries, CHANGE, by="Anna", rejected=True, note=note)
        assert message(raised) == (
            "--rejected needs --note: what did not pass the client's validation"
        )
    with pytest.raises(BadInput) as raised:
        changes.draft_acceptance(story.entries, CHANGE, by=" ", rejected=False, note="ok")
    assert message(raised) == "--by is empty"
    rejected = changes.draft_acceptance(
        story.entries, CHANGE, by="Anna", rejected=True, note=" menu hidden "
    )
    assert (rejected.kind, rejected.payload["note"]) == ("change-rejected", "menu hidden")
