"""The risk register on the command line, on a real ledger (SQLite and PostgreSQL): risks
added by hand, the residual risks of runs (entries appended as the engine writes them)
flowing in deduplicated and closing by themselves with no entry written, the client's
acceptance recorded as a decision, and bad input refused with nothing written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from support.service import (
    append_as_engine,
    ledger_entries,
    ledger_url,
    output,
    service_postgres,
    settings,
)

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import Entry
from webmg_ops.runs.records import (
    HostResult,
    HostStatus,
    Outcome,
    ResidualRisk,
    RunFinished,
    to_payload,
)

__all__ = ["ledger_url", "service_postgres", "settings"]

Cli = Callable[..., Any]
WEB, DB = "alpenhof-web1", "alpenhof-db1"
SSH_01 = "SSH-01 SSH password authentication disabled"


def finish_run(url: str, run_id: str, action: str, reported: Sequence[ResidualRisk]) -> Entry:
    """Append a successful run's run-finished entry, as the engine writes it."""
    record = RunFinished(
        run_id=run_id,
        action=action,
        check=False,
        outcome=Outcome.SUCCEEDED,
        started_seq=1,
        duration_s=42.0,
        hosts=(HostResult(WEB, HostStatus.OK), HostResult(DB, HostStatus.CHANGED)),
        residual_risks=tuple(reported),
    )
    return append_as_engine(url, "run-finished", "alpenhof", to_payload(record))


def register(cli: Cli, *args: str) -> dict[str, dict[str, Any]]:
    done = cli("risk", "list", *args, "--json")
    assert done.code == ExitCode.OK, done
    return {item["id"]: item for item in output(done.out)}


def later(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def add(cli: Cli, *extra: str) -> dict[str, Any]:
    done = cli(
        "risk",
        "add",
        "alpenhof",
        "--title",
        "Booking plug-in unmaintained",
        "--impact",
        "high",
        "--likelihood",
        "medium",
        *extra,
        "--json",
    )
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = output(done.out)
    return document


def test_a_risk_is_added_accepted_by_the_client_and_closed(cli: Cli, ledger_url: str) -> None:
    added = add(cli, "--host", WEB, "--control", "PLUGIN-EOL")
    (entry,) = ledger_entries(ledger_url)
    assert added["id"] == f"RSK-{entry.seq}"
    assert (entry.kind, entry.payload) == (
        "risk-added",
        {
            "title": "Booking plug-in unmaintained",
            "impact": "high",
            "likelihood": "medium",
            "host": WEB,
            "control": "PLUGIN-EOL",
        },
    )
    until = later(60)
    accepted = cli("risk", "accept", added["id"], "--by", "Anna Gruber", "--until", until, "--json")
    assert accepted.code == ExitCode.OK, accepted
    decision, acceptance = ledger_entries(ledger_url)[1:]
    assert (decision.kind, decision.payload["party"], decision.payload["subject"]) == (
        "decision-recorded",
        "client",
        added["id"],
    )
    assert acceptance.seq == decision.seq + 1
    shown = output(accepted.out)
    assert (shown["state"], shown["accepted_until"], shown["acceptance_decision"]) == (
        "accepted",
        until,
        f"DEC-{decision.seq}",
    )
    closed = cli("risk", "close", added["id"], "--note", "plug-in replaced", "--json")
    assert closed.code == ExitCode.OK and output(closed.out)["state"] == "closed"
    assert register(cli, "alpenhof", "--open") == {}
    assert register(cli)[added["id"]]["closed_note"] == "plug-in replaced"


def test_residual_risks_of_runs_flow_into_the_register_and_close_by_themselves(
    cli: Cli, ledger_url: str
) -> None:
    """Two harden runs report SSH-01 on the web host: one item; a third run no longer
    reports it: closed, computed when read (listing writes nothing)."""
    first = finish_run(
        ledger_url,
        "run-a",
        "harden",
        [ResidualRisk(WEB, SSH_01, "read-only"), ResidualRisk(DB, "a reboot is pending", "k")],
    )
    finish_run(
        ledger_url,
        "run-b",
        "harden",
        [ResidualRisk(WEB, f"SSH-01 still fails: {SSH_01[7:]}", "still read-only")],
    )
    items = register(cli, "alpenhof")
    ssh = items[f"RSK-{first.seq}.1"]
    assert (ssh["host"], ssh["control"], ssh["state"], ssh["last_run"]) == (
        WEB,
        "SSH-01",
        "open",
        "run-b",
    )
    assert sorted(items) == [f"RSK-{first.seq}.1", f"RSK-{first.seq}.2"]
    # run-b (a successful harden on both hosts) no longer reported the pending reboot.
    assert items[f"RSK-{first.seq}.2"]["closed_by_run"] == "run-b"
    accepted = cli("risk", "accept", f"RSK-{first.seq}.1", "--until", later(30), "--json")
    assert accepted.code == ExitCode.OK, accepted
    finish_run(ledger_url, "run-c", "harden", [])
    before = ledger_entries(ledger_url)
    closed = register(cli, "alpenhof")[f"RSK-{first.seq}.1"]
    assert (closed["state"], closed["closed_by_run"]) == ("closed", "run-c")
    assert ledger_entries(ledger_url) == before
    assert register(cli, "riverton") == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("add", "nobody", "--title", "t", "--impact", "low", "--likelihood", "low"),
            "unknown client",
        ),
        (
            (
                "add",
                "alpenhof",
                "--title",
                "t",
                "--impact",
                "low",
                "--likelihood",
                "low",
                "--host",
                "web9",
            ),
            "alpenhof has no host 'web9'",
        ),
        (
            ("add", "alpenhof", "--title", " ", "--impact", "low", "--likelihood", "low"),
            "--title is empty",
        ),
        (("add", "alpenhof", "--title", "t", "--impact", "huge", "--likelihood", "low"), "'huge'"),
        (
            (
                "add",
                "alpenhof",
                "--title",
                "t",
                "--impact",
                "low",
                "--likelihood",
                "low",
                "--host",
                WEB,
                "--control",
                "PLUGIN-EOL",
            ),
            "is already open for alpenhof-web1: PLUGIN-EOL",
        ),
        (("list", "nobody"), "unknown client 'nobody'"),
        (("accept", "RSK-999", "--until", "2099-01-01"), "unknown risk RSK-999"),
        (("accept", "RSK-{run}.9", "--until", "2099-01-01"), "unknown risk RSK-{run}.9"),
        (("accept", "RSK-{run}", "--until", "2099-01-01"), "unknown risk RSK-{run}"),
        (("accept", "CHG-{risk}", "--until", "2099-01-01"), "'CHG-{risk}' is not a risk id"),
        (("accept", "RSK-{risk}", "--until", "31/12/2099"), "--until '31/12/2099' is not a date"),
        (("accept", "RSK-{risk}", "--until", "2020-01-01"), "must be after today"),
        (("accept", "RSK-{risk}", "--until", "2099-01-01", "--by", " "), "--by is empty"),
        (("close", "RSK-{risk}", "--note", " "), "--note is empty"),
        (("close", "RSK-{risk}.1", "--note", "n"), "unknown risk RSK-{risk}.1"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_writes_nothing(
    cli: Cli, ledger_url: str, args: tuple[str, ...], message: str
) -> None:
    run = finish_run(ledger_url, "run-a", "check", [ResidualRisk(WEB, "a reboot is pending", "k")])
    risk = add(cli, "--host", WEB, "--control", "PLUGIN-EOL")["id"].removeprefix("RSK-")

    def fill(text: str) -> str:
        return text.replace("{run}", str(run.seq)).replace("{risk}", risk)

    before = ledger_entries(ledger_url)
    done = cli("risk", *(fill(arg) for arg in args))
    assert done.code == ExitCode.BAD_INPUT, done
    assert fill(message) in done.err
    assert "Traceback" not in done.err
    assert ledger_entries(ledger_url) == before
