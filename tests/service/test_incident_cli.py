"""``webmg-ops incident ...`` end to end on a real ledger (SQLite and PostgreSQL): every
command records one entry and prints the incident with its id, severity and clocks;
every bad input exits 2 (a policy refusal 3) with its reason, and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.service import ledger_url, service_postgres

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger

# Fixtures of the service tests: every test here runs on SQLite and on PostgreSQL.
__all__ = ["ledger_url", "service_postgres"]

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


def recorded(ledger_url: str) -> list[tuple[int, str, str]]:
    """Return every entry's seq, kind and actor, read from the ledger itself."""
    with open_ledger(ledger_url, create=False, missing_ok=True) as ledger:
        return [(entry.seq, entry.kind, entry.actor) for entry in ledger.entries()]


def payloads(ledger_url: str) -> list[dict[str, Any]]:
    with open_ledger(ledger_url, create=False, missing_ok=True) as ledger:
        return [entry.payload for entry in ledger.entries()]


def run_json(cli: Cli, *args: str) -> dict[str, Any]:
    done = cli(*args, "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


def open_p1(cli: Cli, client: str = "alpenhof", *extra: str) -> dict[str, Any]:
    return run_json(
        cli,
        "incident",
        "open",
        client,
        "--title",
        "booking site down",
        "--impact",
        "availability",
        "--criticality",
        "critical",
        *extra,
    )


def test_an_incident_from_open_to_close(cli: Cli, ledger_url: str, tmp_path: Path) -> None:
    """Open, acknowledge, mitigate, fix, post-mortem, close: one entry each, by whom."""
    opened = open_p1(
        cli, "alpenhof", "--host", "alpenhof-web1", "--reported-by", "front desk", "--ticket", "T-9"
    )
    incident_id = opened["id"]
    (seq, kind, _actor), *_ = recorded(ledger_url)
    assert (incident_id, kind) == (f"INC-{seq}", "incident-opened")
    assert (opened["severity"], opened["state"], opened["host"]) == (
        "P1",
        "triage",
        "alpenhof-web1",
    )
    assert set(opened["clocks"]) == {"response", "restore", "resolution"}
    assert all(clock["state"] == "running" for clock in opened["clocks"].values())
    assert opened["clocks"]["response"]["due_at"].endswith(("+01:00", "+02:00"))  # Vienna

    acked = run_json(cli, "incident", "ack", incident_id, "--by", "Anna Gruber")
    assert acked["state"] == "mitigation"
    assert acked["clocks"]["response"]["state"] == "met"
    run_json(cli, "incident", "mitigate", incident_id, "--note", "disk cleaned")
    run_json(cli, "incident", "fix", incident_id, "--note", "log rotation fixed")
    file = tmp_path / "postmortem.md"
    file.write_text(POSTMORTEM)
    written = run_json(cli, "incident", "postmortem", incident_id, "--file", str(file))
    assert written["postmortem"]["actions"] == [
        "Alert at 80 % disk use",
        "Rotate the slow-query log",
    ]
    closed = run_json(cli, "incident", "close", incident_id, "--note", "done")
    assert closed["state"] == "closed"
    assert [clock["state"] for clock in closed["clocks"].values()] == ["met"] * 3

    kinds = [(kind, actor) for _seq, kind, actor in recorded(ledger_url)]
    assert [kind for kind, _actor in kinds] == [
        "incident-opened",
        "incident-acknowledged",
        "incident-mitigated",
        "incident-fixed",
        "incident-postmortem",
        "incident-closed",
    ]
    assert kinds[1][1] == "Anna Gruber"
    assert payloads(ledger_url)[4]["actions"] == written["postmortem"]["actions"]

    listed = run_json(cli, "incident", "list", "alpenhof")
    assert [item["id"] for item in listed] == [incident_id]  # type: ignore[index]
    assert run_json(cli, "incident", "list", "--open") == []


def test_by_defaults_to_the_recorded_operator(
    cli: Cli, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBMG_OPERATOR", "Mira Operator")
    incident_id = open_p1(cli)["id"]
    run_json(cli, "incident", "ack", incident_id)
    assert [actor for _seq, _kind, actor in recorded(ledger_url)] == ["Mira Operator"] * 2


def test_wait_and_resume_pause_the_clocks(cli: Cli, ledger_url: str) -> None:
    incident_id = open_p1(cli, "riverton")["id"]
    waiting = run_json(
        cli, "incident", "wait", incident_id, "--on", "client", "--note", "access to the portal"
    )
    assert waiting["waiting_on"] == "client"
    assert {clock["state"] for clock in waiting["clocks"].values()} == {"paused"}
    resumed = run_json(cli, "incident", "resume", incident_id)
    assert resumed["waiting_on"] is None
    assert [kind for _seq, kind, _actor in recorded(ledger_url)][-2:] == [
        "incident-waiting",
        "incident-resumed",
    ]


def test_raise_and_lower_are_recorded_and_change_the_severity(cli: Cli, ledger_url: str) -> None:
    opened = run_json(
        cli,
        "incident",
        "open",
        "alpenhof",
        "--title",
        "slow admin page",
        "--impact",
        "operations",
        "--criticality",
        "minor",
    )
    assert opened["severity"] == "P3"
    raised = run_json(cli, "incident", "raise", opened["id"], "--to", "P1", "--note", "all pages")
    assert raised["severity"] == "P1"
    lowered = run_json(
        cli, "incident", "lower", opened["id"], "--to", "P2", "--reason", "only one page"
    )
    assert lowered["severity"] == "P2"
    assert payloads(ledger_url)[-1] == {
        "incident": int(opened["id"].split("-")[1]),
        "from": "P1",
        "to": "P2",
        "reason": "only one page",
        "decision": "severity lowered",
    }


def test_list_and_show_give_each_clock_at_an_instant(cli: Cli) -> None:
    opened = open_p1(cli, "riverton")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    shown = run_json(cli, "incident", "show", opened["id"], "--at", later)
    # riverton's P1 response is 20 minutes, 24/7: an hour later it is breached.
    assert shown["clocks"]["response"]["state"] == "breached"
    assert shown["clocks"]["restore"]["state"] == "running"
    assert shown["timezone"] == "America/New_York"
    table = cli("incident", "list", "--at", later)
    assert table.code == ExitCode.OK, table
    assert opened["id"] in table.err and "breached" in table.err and "running" in table.err
    human = cli("incident", "show", opened["id"])
    assert human.code == ExitCode.OK and "incident-opened" in human.err


# --- bad input: the reason, exit 2 (3 when policy refuses), nothing written ------


def _open_and(cli: Cli, *steps: tuple[str, ...]) -> str:
    incident_id = str(open_p1(cli)["id"])
    for step in steps:
        assert cli("incident", step[0], incident_id, *step[1:]).code == ExitCode.OK
    return incident_id


BAD_INPUTS: list[tuple[str, Callable[[Cli, Path], list[str]], ExitCode, str]] = [
    (
        "unknown id",
        lambda cli, tmp: ["incident", "ack", "INC-999"],
        ExitCode.BAD_INPUT,
        "unknown incident INC-999",
    ),
    (
        "malformed id",
        lambda cli, tmp: ["incident", "ack", "42"],
        ExitCode.BAD_INPUT,
        "'42' is not an incident id (expected INC-42)",
    ),
    (
        "id of an entry that is not an incident",
        lambda cli, tmp: (
            cli("note", "alpenhof", "--text", "a note, not an incident"),
            ["incident", "ack", "INC-1"],
        )[1],
        ExitCode.BAD_INPUT,
        "unknown incident INC-1",
    ),
    (
        "unknown client",
        lambda cli, tmp: [
            "incident",
            "open",
            "nobody",
            "--title",
            "x",
            "--impact",
            "data",
            "--criticality",
            "minor",
        ],
        ExitCode.BAD_INPUT,
        "nobody",
    ),
    (
        "unknown host",
        lambda cli, tmp: [
            "incident",
            "open",
            "alpenhof",
            "--title",
            "x",
            "--impact",
            "data",
            "--criticality",
            "minor",
            "--host",
            "riverton-web1",
        ],
        ExitCode.BAD_INPUT,
        "alpenhof has no host 'riverton-web1' in its inventory",
    ),
    (
        "fix before triage is done",
        lambda cli, tmp: ["incident", "fix", _open_and(cli), "--note", "x"],
        ExitCode.BAD_INPUT,
        "is in triage: 'fix' is out of order",
    ),
    (
        "close before the fix",
        lambda cli, tmp: ["incident", "close", _open_and(cli, ("ack",)), "--note", "x"],
        ExitCode.BAD_INPUT,
        "is in mitigation: 'close' is out of order",
    ),
    (
        "mitigate without a note",
        lambda cli, tmp: ["incident", "mitigate", _open_and(cli, ("ack",))],
        ExitCode.BAD_INPUT,
        "--note is missing or empty",
    ),
    (
        "missing post-mortem file",
        lambda cli, tmp: [
            "incident",
            "postmortem",
            _open_and(cli, ("ack",), ("mitigate", "--note", "x"), ("fix", "--note", "y")),
            "--file",
            str(tmp / "absent.md"),
        ],
        ExitCode.BAD_INPUT,
        "absent.md does not exist or is not a file",
    ),
    (
        "empty post-mortem file",
        lambda cli, tmp: [
            "incident",
            "postmortem",
            _open_and(cli, ("ack",), ("mitigate", "--note", "x"), ("fix", "--note", "y")),
            "--file",
            str((tmp / "empty.md", (tmp / "empty.md").write_text("\n"))[0]),
        ],
        ExitCode.BAD_INPUT,
        "post-mortem empty.md is empty",
    ),
    (
        "post-mortem without its sections",
        lambda cli, tmp: [
            "incident",
            "postmortem",
            _open_and(cli, ("ack",), ("mitigate", "--note", "x"), ("fix", "--note", "y")),
            "--file",
            str((tmp / "pm.md", (tmp / "pm.md").write_text("# Summary\nok\n"))[0]),
        ],
        ExitCode.BAD_INPUT,
        "lacks the section(s) timeline, root cause, what went well, actions",
    ),
    (
        "P1 closed without a post-mortem",
        lambda cli, tmp: [
            "incident",
            "close",
            _open_and(cli, ("ack",), ("mitigate", "--note", "x"), ("fix", "--note", "y")),
            "--note",
            "done",
        ],
        ExitCode.REFUSED,
        "is P1: the stability-security policy needs a post-mortem before it closes",
    ),
    (
        "wait on someone other than the client",
        lambda cli, tmp: ["incident", "wait", _open_and(cli), "--on", "vendor", "--note", "x"],
        ExitCode.BAD_INPUT,
        "Invalid value for '--on': 'vendor' is not 'client'",
    ),
    (
        "lower without a reason",
        lambda cli, tmp: ["incident", "lower", _open_and(cli), "--to", "P3"],
        ExitCode.BAD_INPUT,
        "--reason is missing or empty",
    ),
    (
        "raise to an unknown priority",
        lambda cli, tmp: ["incident", "raise", _open_and(cli), "--to", "P0"],
        ExitCode.BAD_INPUT,
        "severity 'P0' is not one of P1, P2, P3",
    ),
    (
        "list of an unknown client",
        lambda cli, tmp: ["incident", "list", "nobody"],
        ExitCode.BAD_INPUT,
        "nobody",
    ),
    (
        "an instant without its offset",
        lambda cli, tmp: ["incident", "list", "--at", "2026-11-30T09:00"],
        ExitCode.BAD_INPUT,
        "needs a UTC offset",
    ),
]


@pytest.mark.parametrize(
    ("prepare", "code", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS],
)
def test_a_bad_input_is_refused_with_its_reason_and_writes_nothing(
    cli: Cli,
    ledger_url: str,
    tmp_path: Path,
    prepare: Callable[[Cli, Path], list[str]],
    code: ExitCode,
    message: str,
) -> None:
    with open_ledger(ledger_url):
        pass  # the ledger exists, as it does once anything was recorded
    args = prepare(cli, tmp_path)
    before = recorded(ledger_url)
    done = cli(*args)
    assert done.code == code, done
    assert message in done.err, done
    assert "Traceback" not in done.err
    assert recorded(ledger_url) == before
    as_json = cli(*args, "--json")
    assert as_json.code == code
    if not done.err.startswith("Usage:"):
        # A refusal of the tool (not of the command line's syntax) is, in JSON mode,
        # one JSON document on stderr.
        assert message in json.loads(as_json.err)["error"]
    assert recorded(ledger_url) == before
