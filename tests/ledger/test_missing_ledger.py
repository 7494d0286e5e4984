"""A ledger that does not exist (a fresh checkout's, or a mistyped path) is never created
by a command that only reads: commands that report what the ledger holds refuse with
exit 2 and say so; commands that plan from history take it as an empty history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webmg_ops.errors import ExitCode

REPORTING = [
    ["ledger", "verify"],
    ["ledger", "head"],
    ["ledger", "export", "--format", "jsonl"],
    ["ledger", "checkpoint"],
    ["runs"],
    ["show", "alpenhof-20261128T120000Z-check"],
    ["incident", "list"],
    ["incident", "show", "INC-1"],
]


def _db_file(ledger_url: str) -> Path:
    return Path(ledger_url.removeprefix("sqlite:///"))


@pytest.mark.parametrize("command", REPORTING, ids=" ".join)
def test_a_reporting_command_on_a_missing_ledger_says_so_and_creates_nothing(
    cli, ledger_url: str, command: list[str]
) -> None:
    db_file = _db_file(ledger_url)
    done = cli(*command)
    assert done.code == ExitCode.BAD_INPUT, done
    assert done.err.startswith(f"Error: no ledger yet at {db_file}"), done
    assert done.out == ""
    assert not db_file.parent.exists()


def test_due_on_a_fresh_checkout_shows_everything_due_and_creates_nothing(
    cli, ledger_url: str
) -> None:
    done = cli("due", "--at", "2026-11-28T12:00:00+00:00", "--json")
    assert done.code == ExitCode.OK, done
    riverton = next(item for item in json.loads(done.out) if item["client"] == "riverton")
    assert "drill" in riverton["due"]  # nothing was ever recorded
    drills = cli("drills-due", "--json")
    assert drills.code == ExitCode.OK, drills
    assert all(row["due"] for row in json.loads(drills.out))
    assert not _db_file(ledger_url).parent.exists()


def test_a_mistyped_ledger_url_is_bad_input(cli) -> None:
    done = cli("--ledger", "bogus://", "due")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "Error: ledger URL bogus:// names an unsupported database" in done.err
