"""One client's broken files do not stop ``due`` and ``drills-due`` for the others:
the valid clients are processed, the broken one reported with file and line, exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
VALID = {"alpenhof", "riverton", "atelier-nord"}


@pytest.fixture
def broken_contract(inventories: Path) -> str:
    """Give terre-solidaire an unknown level; return where the problem is (file:line)."""
    file = inventories / "terre-solidaire" / "client.yml"
    lines = file.read_text().splitlines()
    line = lines.index("level: continuous-evolution") + 1
    lines[line - 1] = "level: gold"
    file.write_text("\n".join(lines) + "\n")
    return f"{file}:{line}: level"


def test_due_shows_the_valid_clients_and_reports_the_broken_one(cli, broken_contract) -> None:
    result = cli("due", "--at", AT.isoformat(), "--json")
    assert result.code == ExitCode.BAD_INPUT, result
    shown = {item["client"] for item in json.loads(result.out)}
    assert shown >= VALID
    assert "terre-solidaire" not in shown
    error = json.loads(result.err.strip().splitlines()[-1])
    assert broken_contract in error["error"]
    assert error["exit_code"] == ExitCode.BAD_INPUT


def test_due_table_then_the_error(cli, broken_contract) -> None:
    result = cli("due", "--at", AT.isoformat())
    assert result.code == ExitCode.BAD_INPUT, result
    table, _, error = result.err.partition("Error: ")
    assert "riverton" in table
    assert broken_contract in error


def test_due_reads_contracts_only_and_validate_checks_the_inventory(cli, inventories) -> None:
    # An inventory without hosts: invalid, but not a contract's problem.
    (inventories / "alpenhof" / "hosts.yml").write_text("all:\n  hosts: {}\n")
    due = cli("due", "--at", AT.isoformat(), "--json")
    assert due.code == ExitCode.OK, due
    assert "alpenhof" in {item["client"] for item in json.loads(due.out)}
    checked = cli("validate", "alpenhof")
    assert checked.code == ExitCode.BAD_INPUT, checked
    assert "the inventory lists no hosts" in checked.err


def test_drills_due_lists_the_valid_clients_and_exits_2(cli, broken_contract) -> None:
    result = cli("drills-due", "--at", AT.isoformat(), "--json")
    assert result.code == ExitCode.BAD_INPUT, result
    rows = json.loads(result.out)
    assert {row["client"] for row in rows} == VALID  # every contracted valid client
    assert all(row["due"] for row in rows)  # nothing was ever drilled
    assert broken_contract in result.err


def test_drills_due_run_drills_the_valid_clients_then_exits_2(
    cli, broken_contract, ledger_url: str
) -> None:
    # Every valid client drilled an hour ago: nothing is due, so no host is reached.
    with open_ledger(ledger_url) as ledger:
        for client in VALID:
            ledger.append(
                "run-finished",
                client,
                {"run_id": f"{client}-drill", "action": "drill", "outcome": "succeeded"},
                at=datetime.now(UTC) - timedelta(hours=1),
            )
    result = cli("drills-due", "--run", "--json")
    assert result.code == ExitCode.BAD_INPUT, result
    assert json.loads(result.out) == []
    assert broken_contract in result.err


def test_validate_reports_the_broken_client_and_accepts_the_others(cli, broken_contract) -> None:
    result = cli("validate")
    assert result.code == ExitCode.BAD_INPUT, result
    for name in VALID:
        assert f"ok {name}" in result.err
    assert broken_contract in result.err
