"""``webmg-ops backlog ...`` end to end on a real ledger (SQLite and PostgreSQL): the
backlog lists a post-mortem's actions as items, starts are capped by the WIP cap and
change requests by the open-items cap (both policy rows, tightened by a contract, never
loosened), the client's deprioritisation is a recorded decision that makes room, and
every bad input exits 2 with its reason and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.service import (
    ledger_entries,
    ledger_url,
    output,
    service_postgres,
    settings,
)

from webmg_ops.errors import ExitCode

__all__ = ["ledger_url", "service_postgres", "settings"]

Cli = Callable[..., Any]

POSTMORTEM = """# Booking site down

## Summary
The site answered 502.

## Timeline
09:00 alert, 09:40 restored.

## Root cause
A full disk.

## What went well
The alert.

## Actions
- Alert at 80 % disk use
- Rotate the slow-query log
"""


def run_json(cli: Cli, *args: str) -> Any:
    done = cli(*args, "--json")
    assert done.code == ExitCode.OK, done
    return output(done.out)


def request(cli: Cli, client: str = "alpenhof", title: str = "Newsletter box") -> str:
    change_id: str = run_json(
        cli, "change", "request", client, "--title", title, "--description", "d"
    )["id"]
    return change_id


def fixed_p1(cli: Cli, client: str = "alpenhof") -> str:
    """Open a P1 and take it to its fix: it then waits on its post-mortem."""
    incident_id: str = run_json(
        cli,
        "incident",
        "open",
        client,
        "--title",
        "Booking site down",
        "--impact",
        "availability",
        "--criticality",
        "critical",
    )["id"]
    run_json(cli, "incident", "ack", incident_id)
    run_json(cli, "incident", "mitigate", incident_id, "--note", "disk cleaned")
    run_json(cli, "incident", "fix", incident_id, "--note", "rotation fixed")
    return incident_id


def test_post_mortem_actions_appear_as_backlog_items(
    cli: Cli, ledger_url: str, tmp_path: Path
) -> None:
    """A fixed P1 waits on its post-mortem; once written, each of its actions is an item
    ``ACT-<post-mortem seq>.<n>`` until marked done, also after the incident closes."""
    incident_id = fixed_p1(cli)
    (item,) = run_json(cli, "backlog", "alpenhof")
    assert (item["id"], item["waits_on"], item["waiting_for"]) == (
        incident_id,
        "agency",
        "work: post-mortem",
    )
    file = tmp_path / "pm.md"
    file.write_text(POSTMORTEM)
    run_json(cli, "incident", "postmortem", incident_id, "--file", str(file))
    (postmortem,) = [e for e in ledger_entries(ledger_url) if e.kind == "incident-postmortem"]
    listed = run_json(cli, "backlog", "alpenhof")
    assert [(item["id"], item["title"], item["severity"]) for item in listed] == [
        (f"ACT-{postmortem.seq}.1", f"{incident_id}: Alert at 80 % disk use", "P1"),
        (f"ACT-{postmortem.seq}.2", f"{incident_id}: Rotate the slow-query log", "P1"),
    ]
    run_json(cli, "incident", "close", incident_id, "--note", "done")
    done = run_json(cli, "backlog", "done", f"ACT-{postmortem.seq}.1", "--note", "alert added")
    assert done["id"] == f"ACT-{postmortem.seq}.1"
    last = ledger_entries(ledger_url)[-1]
    assert (last.kind, last.payload["item"]) == ("backlog-done", f"ACT-{postmortem.seq}.1")
    assert [item["id"] for item in run_json(cli, "backlog", "alpenhof")] == [
        f"ACT-{postmortem.seq}.2"
    ]
    # The listing is the same with `backlog list CLIENT`, and readable without --json.
    assert run_json(cli, "backlog", "list", "alpenhof")[0]["id"] == f"ACT-{postmortem.seq}.2"
    first_flag = cli("backlog", "--json", "alpenhof")
    assert output(first_flag.out)[0]["id"] == f"ACT-{postmortem.seq}.2"
    table = cli("backlog", "alpenhof")
    assert table.code == ExitCode.OK and f"ACT-{postmortem.seq}.2" in table.err


def test_a_start_past_the_wip_cap_is_refused_until_the_client_deprioritises(
    cli: Cli, ledger_url: str
) -> None:
    """alpenhof's WIP cap is 2: two starts pass, the third exits 3 naming the cap and
    what is in progress, and writes nothing; the client's deprioritisation of one (a
    decision, recorded with it in one transaction) makes room."""
    first, second, third = (request(cli, title=f"change {n}") for n in (1, 2, 3))
    for change in (first, second):
        started = run_json(cli, "backlog", "start", change, "--by", "Ana Ops")
        assert (started["in_progress"], started["started_by"]) == (True, "Ana Ops")
    before = ledger_entries(ledger_url)
    refused = cli("backlog", "start", third)
    assert refused.code == ExitCode.REFUSED, refused
    assert "WIP cap (backlog.wip_cap) is 2" in refused.err
    assert f"({first}, {second})" in refused.err
    assert ledger_entries(ledger_url) == before

    parked = run_json(
        cli, "backlog", "deprioritise", first, "--by", "Anna Gruber (owner)", "--note", "later"
    )
    decision, marked = ledger_entries(ledger_url)[len(before) :]
    assert marked.seq == decision.seq + 1  # one transaction, decision first
    assert (decision.kind, decision.payload["party"], decision.payload["subject"]) == (
        "decision-recorded",
        "client",
        first,
    )
    assert (decision.payload["by"], decision.payload["note"]) == ("Anna Gruber (owner)", "later")
    assert (marked.kind, marked.payload["item"]) == ("backlog-deprioritised", first)
    assert parked["deprioritised_by"] == f"DEC-{decision.seq}"
    (listed,) = run_json(cli, "decision", "list", "alpenhof")
    assert (listed["id"], listed["subject"]) == (f"DEC-{decision.seq}", first)

    assert run_json(cli, "backlog", "start", third)["in_progress"] is True
    order = [item["id"] for item in run_json(cli, "backlog", "alpenhof")]
    assert order == [second, third, first]  # the deprioritised change goes last


def test_a_change_request_past_the_open_items_cap_is_refused(
    cli: Cli, ledger_url: str, edit_contract: Callable[..., Any]
) -> None:
    """With the open-items cap tightened to 2 by the contract, the second request reaches
    it and the third exits 3 with nothing written; once the client deprioritises an
    item the request passes."""
    edit_contract("alpenhof", lambda data: data.update(backlog={"open_cap": 2}))
    first = request(cli)
    request(cli)
    before = ledger_entries(ledger_url)
    refused = cli("change", "request", "alpenhof", "--title", "t", "--description", "d")
    assert refused.code == ExitCode.REFUSED, refused
    assert "2 open item(s), the open-items cap (backlog.open_cap) is 2" in refused.err
    assert ledger_entries(ledger_url) == before
    run_json(cli, "backlog", "deprioritise", first, "--by", "Anna", "--note", "not this year")
    request(cli)
    # Taking the deprioritised change back would make 3 open items: refused as well.
    before = ledger_entries(ledger_url)
    back = cli("backlog", "reprioritise", first, "--by", "Anna", "--note", "after all")
    assert back.code == ExitCode.REFUSED, back
    assert "the open-items cap (backlog.open_cap) is 2" in back.err
    assert ledger_entries(ledger_url) == before


def test_the_policy_shows_the_caps_and_a_contract_may_only_lower_them(
    cli: Cli, edit_contract: Callable[..., Any]
) -> None:
    """`policy` shows both caps per level; a contract lowering one is the source of the
    value, one raising it is refused like every loosening."""
    expected = {
        "alpenhof": (2, 10),
        "terre-solidaire": (3, 20),
        "riverton": (3, 15),
    }
    for client, (wip, open_items) in expected.items():
        rows = run_json(cli, "policy", client)["settings"]
        assert (rows["backlog.wip_cap"]["value"], rows["backlog.open_cap"]["value"]) == (
            wip,
            open_items,
        )
    edit_contract("alpenhof", lambda data: data.update(backlog={"wip_cap": 1}))
    rows = run_json(cli, "policy", "alpenhof")["settings"]
    assert rows["backlog.wip_cap"]["value"] == 1
    assert rows["backlog.wip_cap"]["source"] == "contract"
    edit_contract("alpenhof", lambda data: data.update(backlog={"open_cap": 11}))
    loose = cli("policy", "alpenhof")
    assert loose.code == ExitCode.BAD_INPUT
    assert "backlog.open_cap: 11 is looser than the level stability-security default of 10" in (
        loose.err
    )


def _change(cli: Cli, _tmp: Path) -> str:
    return request(cli)


def _action(cli: Cli, tmp: Path) -> str:
    incident_id = fixed_p1(cli)
    file = tmp / "pm.md"
    file.write_text(POSTMORTEM)
    run_json(cli, "incident", "postmortem", incident_id, "--file", str(file))
    return incident_id


#: (name, how to prepare (returns an id to use), arguments, exit code, message).
BAD_INPUTS: list[tuple[str, Callable[[Cli, Path], str], tuple[str, ...], ExitCode, str]] = [
    ("unknown client", _change, ("backlog", "nowhere"), ExitCode.BAD_INPUT, "unknown client"),
    (
        "unknown client, list",
        _change,
        ("backlog", "list", "nowhere"),
        ExitCode.BAD_INPUT,
        "unknown client",
    ),
    (
        "unknown change",
        _change,
        ("backlog", "start", "CHG-999"),
        ExitCode.BAD_INPUT,
        "unknown backlog item CHG-999",
    ),
    (
        "an incident's id as an action",
        _action,
        ("backlog", "done", "ACT-{seq}.1"),
        ExitCode.BAD_INPUT,
        "unknown backlog item ACT-",
    ),
    (
        "malformed id",
        _change,
        ("backlog", "start", "CHANGE-1"),
        ExitCode.BAD_INPUT,
        "is not a backlog item id",
    ),
    (
        "action without its number",
        _change,
        ("backlog", "done", "ACT-1"),
        ExitCode.BAD_INPUT,
        "is not a backlog item id",
    ),
    (
        "done on a change",
        _change,
        ("backlog", "done", "{id}"),
        ExitCode.BAD_INPUT,
        "leaves the backlog when the client accepts",
    ),
    (
        "done on an incident",
        _action,
        ("backlog", "done", "{id}"),
        ExitCode.BAD_INPUT,
        "not in the backlog",
    ),
    (
        "blank note",
        _change,
        ("backlog", "deprioritise", "{id}", "--by", "Anna", "--note", " "),
        ExitCode.BAD_INPUT,
        "--note is empty",
    ),
    (
        "no note",
        _change,
        ("backlog", "deprioritise", "{id}", "--by", "Anna"),
        ExitCode.BAD_INPUT,
        "Missing option '--note'",
    ),
    (
        "take back an item not deprioritised",
        _change,
        ("backlog", "reprioritise", "{id}", "--by", "Anna", "--note", "n"),
        ExitCode.BAD_INPUT,
        "is not deprioritised",
    ),
    (
        "blank by",
        _change,
        ("backlog", "start", "{id}", "--by", " "),
        ExitCode.BAD_INPUT,
        "--by is empty",
    ),
]


@pytest.mark.parametrize(
    ("prepare", "args", "code", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS],
)
def test_a_bad_input_is_refused_with_its_reason_and_writes_nothing(
    cli: Cli,
    ledger_url: str,
    tmp_path: Path,
    prepare: Callable[[Cli, Path], str],
    args: tuple[str, ...],
    code: ExitCode,
    message: str,
) -> None:
    made = prepare(cli, tmp_path)
    seq = made.split("-")[1]
    argv = [arg.format(id=made, seq=seq) for arg in args]
    before = ledger_entries(ledger_url)
    done = cli(*argv)
    assert done.code == code, done
    assert message in done.err, done
    assert "Traceback" not in done.err
    assert ledger_entries(ledger_url) == before
    if not done.err.startswith("Usage:"):
        as_json = cli(*argv, "--json")
        assert as_json.code == code
        assert message in json.loads(as_json.err)["error"]
        assert ledger_entries(ledger_url) == before
