"""Changes on the command line, on a real ledger (SQLite and PostgreSQL): from request to
the client's acceptance, each step one entry; out of scope waits for the client's
decision; the estimate is capped per level by the policy (tightened, never loosened, by
a contract); a schedule outside every window or inside a freeze is refused; every bad
input exits 2 with its reason and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.service import (
    append_as_engine,
    kinds_in,
    ledger_entries,
    ledger_url,
    output,
    service_postgres,
    settings,
)

from webmg_ops.errors import ExitCode

__all__ = ["ledger_url", "service_postgres", "settings"]

Cli = Callable[..., Any]
TUESDAY = 1
VIENNA = ZoneInfo("Europe/Vienna")


def in_vienna(day: date, hour: int, minute: int = 0) -> str:
    """Return DAY at HOUR:MINUTE on alpenhof's clocks as ISO 8601 with the offset of that
    day (a time option needs one)."""
    return datetime.combine(day, time(hour, minute), tzinfo=VIENNA).isoformat()


def next_open_tuesday(after: date) -> date:
    """Return the first Tuesday after ``after`` outside alpenhof's freezes (20 Dec - 6 Jan,
    and the hotel season, 1 Jul - 31 Aug), found with the standard library alone."""
    day = after + timedelta(days=1)
    while (
        day.weekday() != TUESDAY
        or day.month in (7, 8)
        or (day.month, day.day) >= (12, 20)
        or (day.month, day.day) <= (1, 6)
    ):
        day += timedelta(days=1)
    return day


def next_frozen_tuesday(after: date) -> date:
    """Return the first Tuesday after ``after`` inside alpenhof's Christmas freeze."""
    day = after + timedelta(days=1)
    while day.weekday() != TUESDAY or not (
        (day.month, day.day) >= (12, 20) or (day.month, day.day) <= (1, 6)
    ):
        day += timedelta(days=1)
    return day


def request(cli: Cli, client: str = "alpenhof") -> str:
    done = cli(
        "change",
        "request",
        client,
        "--title",
        "Newsletter box on the offer pages",
        "--description",
        "A sign-up box under each offer",
        "--requested-by",
        "Anna Gruber",
        "--json",
    )
    assert done.code == ExitCode.OK, done
    change_id: str = output(done.out)["id"]
    return change_id


def step(cli: Cli, *args: str) -> dict[str, Any]:
    done = cli("change", *args, "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = output(done.out)
    return document


def estimated(cli: Cli, client: str = "alpenhof") -> str:
    change_id = request(cli, client)
    step(cli, "scope", change_id, "--in", "offer pages")
    step(cli, "estimate", change_id, "--hours", "3", "--risk", "low")
    return change_id


def test_a_change_goes_from_request_to_the_clients_acceptance(cli: Cli, ledger_url: str) -> None:
    """request -> scope -> estimate -> schedule -> approve -> (deploy) -> accept, each one
    entry naming the change; accept before deploy is refused with nothing written."""
    change_id = request(cli)
    (created,) = ledger_entries(ledger_url)
    assert change_id == f"CHG-{created.seq}"
    assert created.payload == {
        "title": "Newsletter box on the offer pages",
        "description": "A sign-up box under each offer",
        "requested_by": "Anna Gruber",
    }
    scoped = step(cli, "scope", change_id, "--in", "offer pages", "--out", "booking site")
    assert (scoped["state"], scoped["out_of_scope"], scoped["blocked"]) == ("scoped", [], False)
    step(cli, "estimate", change_id, "--hours", "6", "--risk", "medium", "--rollback", "remove it")
    tuesday = next_open_tuesday(date.today() + timedelta(days=7))
    scheduled = step(cli, "schedule", change_id, "--at", in_vienna(tuesday, 23, 30))
    assert scheduled["window"] == "tuesday night"
    assert scheduled["scheduled_at"].startswith(f"{tuesday}T2")  # 21:30 or 22:30 UTC
    approved = step(cli, "approve", change_id, "--by", "Anna Gruber", "--note", "go")
    assert approved["state"] == "approved"
    before = ledger_entries(ledger_url)
    refused = cli("change", "accept", change_id, "--by", "Anna Gruber")
    assert refused.code == ExitCode.BAD_INPUT
    assert f"{change_id} is approved: accept needs a change that is deployed" in refused.err
    assert ledger_entries(ledger_url) == before
    # The deploy action will write this entry; the acceptance only reads it.
    append_as_engine(ledger_url, "change-deployed", "alpenhof", {"change": change_id})
    accepted = step(cli, "accept", change_id, "--by", "Anna Gruber", "--note", "works on mobile")
    assert (accepted["state"], accepted["accepted_by"]) == ("accepted", "Anna Gruber")
    entries = ledger_entries(ledger_url)
    assert [entry.kind for entry in entries] == [
        "change-requested",
        "change-scoped",
        "change-estimated",
        "change-scheduled",
        "approval",
        "change-deployed",
        "change-accepted",
    ]
    assert all(entry.payload.get("change") == change_id for entry in entries[1:])
    assert entries[4].payload == {
        "action": "deploy",
        "by": "Anna Gruber",
        "note": "go",
        "change": change_id,
    }
    assert entries[-1].payload == {
        "change": change_id,
        "by": "Anna Gruber",
        "party": "client",
        "note": "works on mobile",
    }
    shown = step(cli, "show", change_id)
    assert [item["seq"] for item in shown["history"]] == [entry.seq for entry in entries]
    listed = cli("change", "list", "alpenhof", "--json")
    assert [item["id"] for item in output(listed.out)] == [change_id]
    assert output(cli("change", "list", "riverton", "--json").out) == []


def test_an_out_of_scope_change_waits_for_the_clients_recorded_decision(
    cli: Cli, ledger_url: str
) -> None:
    """A scope naming an excluded item (alpenhof excludes e-mail) is flagged; the estimate
    is refused (exit 3, nothing written) until accept-out-of-scope records the client's
    decision and the acceptance in one transaction."""
    change_id = request(cli)
    scoped = step(cli, "scope", change_id, "--in", "offer pages", "--in", "E-mail sign-up")
    assert (scoped["out_of_scope"], scoped["blocked"]) == (["e-mail"], True)
    before = ledger_entries(ledger_url)
    refused = cli("change", "estimate", change_id, "--hours", "2", "--risk", "low")
    assert refused.code == ExitCode.REFUSED, refused
    assert "touches what the contract excludes (e-mail)" in refused.err
    assert ledger_entries(ledger_url) == before
    accepted = step(
        cli, "accept-out-of-scope", change_id, "--by", "Anna Gruber", "--note", "for the season"
    )
    decision, acceptance = ledger_entries(ledger_url)[len(before) :]
    assert (decision.kind, acceptance.kind) == ("decision-recorded", "change-out-of-scope-accepted")
    assert acceptance.seq == decision.seq + 1
    assert accepted["out_of_scope_decision"] == f"DEC-{decision.seq}"
    (listed,) = output(cli("decision", "list", "alpenhof", "--json").out)
    assert (listed["id"], listed["party"], listed["by"], listed["subject"]) == (
        f"DEC-{decision.seq}",
        "client",
        "Anna Gruber",
        change_id,
    )
    assert step(cli, "estimate", change_id, "--hours", "2", "--risk", "low")["state"] == "estimated"


@pytest.mark.parametrize(
    ("client", "cap_hours"),
    [("alpenhof", 8), ("terre-solidaire", 16), ("riverton", 16)],
)
def test_the_estimate_is_capped_per_level(
    cli: Cli, ledger_url: str, client: str, cap_hours: int
) -> None:
    """stability-security: 8 h; continuous-evolution and institutional-sla: 16 h. Past the
    cap: exit 3, "split the change", nothing written."""
    change_id = request(cli, client)
    step(cli, "scope", change_id, "--in", "web nodes")
    before = ledger_entries(ledger_url)
    refused = cli("change", "estimate", change_id, "--hours", str(cap_hours + 0.5), "--risk", "low")
    assert refused.code == ExitCode.REFUSED, refused
    assert f"more than the {cap_hours}h one change may take" in refused.err
    assert "split the change" in refused.err
    assert ledger_entries(ledger_url) == before
    assert step(cli, "estimate", change_id, "--hours", str(cap_hours), "--risk", "high")[
        "estimate"
    ]["hours"] == float(cap_hours)


def test_the_policy_shows_the_change_rows(cli: Cli) -> None:
    """`policy` shows the cap and the approval gate of each level (government: approval)."""
    expected = {
        "alpenhof": ("8h", False),
        "terre-solidaire": ("16h", False),
        "riverton": ("16h", True),
        "atelier-nord": ("8h", False),
    }
    for client, (cap, approval) in expected.items():
        settings_ = output(cli("policy", client, "--json").out)["settings"]
        assert settings_["changes.max_estimate"]["value"] == cap
        assert settings_["changes.approval_required"]["value"] is approval


def test_a_contract_may_tighten_the_cap_never_loosen_it(
    cli: Cli, ledger_url: str, edit_contract: Callable[..., Any]
) -> None:
    edit_contract("alpenhof", lambda data: data.update(changes={"max_estimate": "4h"}))
    policy = output(cli("policy", "alpenhof", "--json").out)["settings"]
    assert policy["changes.max_estimate"] == {
        "value": "4h",
        "source": "contract",
        "description": "largest estimate of one change; a larger one must be split",
    }
    change_id = request(cli)
    step(cli, "scope", change_id, "--in", "offer pages")
    refused = cli("change", "estimate", change_id, "--hours", "5", "--risk", "low")
    assert refused.code == ExitCode.REFUSED and "more than the 4h" in refused.err
    edit_contract("alpenhof", lambda data: data.update(changes={"max_estimate": "12h"}))
    loose = cli("policy", "alpenhof")
    assert loose.code == ExitCode.BAD_INPUT
    assert (
        "changes.max_estimate: 12h is looser than the level stability-security default of 8h"
        in loose.err
    )
    edit_contract("riverton", lambda data: data.update(changes={"approval_required": False}))
    dropped = cli("policy", "riverton")
    assert dropped.code == ExitCode.BAD_INPUT
    assert "changes.approval_required: no is looser" in dropped.err


def test_a_schedule_outside_every_window_or_in_a_freeze_is_refused(
    cli: Cli, ledger_url: str
) -> None:
    """Exit 3 with the reason (the next opening, or the freeze), nothing written."""
    change_id = estimated(cli)
    before = ledger_entries(ledger_url)
    tuesday = next_open_tuesday(date.today() + timedelta(days=7))
    outside = cli("change", "schedule", change_id, "--at", in_vienna(tuesday, 12))
    assert outside.code == ExitCode.REFUSED, outside
    assert f"outside every maintenance window; the next opening is {tuesday} 23:00" in outside.err
    frozen = next_frozen_tuesday(date.today())
    inside = cli("change", "schedule", change_id, "--at", in_vienna(frozen, 23, 30))
    assert inside.code == ExitCode.REFUSED, inside
    assert "inside the freeze 'christmas and new year'" in inside.err
    assert ledger_entries(ledger_url) == before
    by_window = step(cli, "schedule", change_id, "--window", "thursday night")
    assert by_window["window"] == "thursday night"


def test_the_approval_is_optional_where_the_policy_does_not_require_it(cli: Cli) -> None:
    """Approval is recorded on any level; on institutional-sla a deploy needs it (see the
    state tests); approving before the schedule is out of order."""
    change_id = estimated(cli, "riverton")
    early = cli("change", "approve", change_id, "--by", "Marcus Reed")
    assert early.code == ExitCode.BAD_INPUT
    assert f"{change_id} is estimated: approve needs a change that is scheduled" in early.err


@pytest.mark.parametrize(
    ("state", "args", "code", "message"),
    [
        ("none", ("request", "nobody", "--title", "t", "--description", "d"), 2, "unknown client"),
        (
            "none",
            ("request", "alpenhof", "--title", " ", "--description", "d"),
            2,
            "--title is empty",
        ),
        ("none", ("list", "nobody"), 2, "unknown client 'nobody'"),
        ("requested", ("scope", "CHG-999", "--in", "x"), 2, "unknown change CHG-999"),
        ("requested", ("scope", "CHG-x", "--in", "x"), 2, "'CHG-x' is not a change id"),
        ("requested", ("scope", "RSK-1", "--in", "x"), 2, "'RSK-1' is not a change id"),
        ("requested", ("show", "CHG-0"), 2, "not a change id"),
        ("requested", ("scope", "{id}"), 2, "--in: name at least one"),
        ("requested", ("scope", "{id}", "--in", " "), 2, "--in has an empty item"),
        ("requested", ("estimate", "{id}", "--hours", "2", "--risk", "low"), 2, "is requested"),
        ("requested", ("accept-out-of-scope", "{id}", "--note", "n"), 2, "is requested"),
        (
            "requested",
            ("accept", "{id}"),
            2,
            "is requested: accept needs a change that is deployed",
        ),
        ("scoped", ("estimate", "{id}", "--hours", "0", "--risk", "low"), 2, "must be more than 0"),
        ("scoped", ("estimate", "{id}", "--hours", "2", "--risk", "severe"), 2, "'severe'"),
        ("scoped", ("estimate", "{id}", "--hours", "two", "--risk", "low"), 2, "'two'"),
        ("scoped", ("schedule", "{id}", "--window", "tuesday night"), 2, "is scoped"),
        ("estimated", ("schedule", "{id}", "--at", "soon"), 2, "not an ISO 8601 time"),
        ("estimated", ("schedule", "{id}", "--at", "2020-01-07T23:30+01:00"), 2, "in the past"),
        ("estimated", ("schedule", "{id}", "--at", "2030-01-08T23:30"), 2, "needs a UTC offset"),
        ("estimated", ("schedule", "{id}"), 2, "either --window NAME or --at TIME"),
        ("estimated", ("schedule", "{id}", "--window", "noon"), 2, "no window 'noon'"),
        ("estimated", ("approve", "{id}"), 2, "is estimated: approve needs"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_writes_nothing(
    cli: Cli, ledger_url: str, state: str, args: tuple[str, ...], code: int, message: str
) -> None:
    change_id = ""
    if state == "requested":
        change_id = request(cli)
    elif state == "scoped":
        change_id = request(cli)
        step(cli, "scope", change_id, "--in", "offer pages")
    elif state == "estimated":
        change_id = estimated(cli)
    before = ledger_entries(ledger_url)
    done = cli("change", *(arg.replace("{id}", change_id) for arg in args))
    assert done.code == code, done
    assert message in done.err
    assert "Traceback" not in done.err
    assert ledger_entries(ledger_url) == before


def test_an_id_naming_another_kind_of_entry_is_unknown(cli: Cli, ledger_url: str) -> None:
    """CHG-<seq> of a decision's entry is no change."""
    done = cli("decision", "record", "alpenhof", "--title", "t", "--party", "client", "--note", "n")
    assert done.code == ExitCode.OK
    (decision,) = ledger_entries(ledger_url)
    wrong = cli("change", "show", f"CHG-{decision.seq}")
    assert wrong.code == ExitCode.BAD_INPUT and f"unknown change CHG-{decision.seq}" in wrong.err
    assert kinds_in(ledger_url) == ["decision-recorded"]
