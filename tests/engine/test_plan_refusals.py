"""``plan`` names every reason a run would be refused, in the client's time, and records
nothing: its help says so."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from support.updates import always_open

from webmg_ops.cli.runs import plan_command, run_command
from webmg_ops.engine.lock import LockHolder, client_lock
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.service.records import record_approval
from webmg_ops.settings import Settings

NEW_YORK = ZoneInfo("America/New_York")


def _ledger_size(url: str) -> int:
    with open_ledger(url) as ledger:
        return len(list(ledger.entries()))


def _closed_now(data: dict[str, Any]) -> None:
    # A window three days from now at noon in New York: closed whatever the time of day.
    other_day = (datetime.now(NEW_YORK) + timedelta(days=3)).strftime("%a").lower()
    always_open(data)
    data["windows"] = [
        {
            "name": "later",
            "weekdays": [other_day],
            "start": "12:00",
            "duration": "1h",
            "timezone": "America/New_York",
        }
    ]


def test_plan_names_window_diagnostic_approval_and_lock(
    cli: Any, ledger_url: str, edit_contract: Any, private_var: Path
) -> None:
    """riverton (approvals required) outside its window, with no diagnostic, no approval and
    another run holding its lock: four reasons, in the order a run checks them."""
    edit_contract("riverton", _closed_now)
    before = _ledger_size(ledger_url)
    holder = LockHolder(run_id="riverton-update-other", pid=os.getpid(), started="earlier")
    with client_lock(private_var, "riverton", holder):
        done = cli("plan", "riverton", "update", "--reason", "monthly", "--json")
        text = cli("plan", "riverton", "update")
    assert done.code == ExitCode.REFUSED, done
    plan = json.loads(done.out)
    kinds = [refused["kind"] for refused in plan["refusals"]]
    assert kinds == ["window", "diagnostic", "approval", "lock"]
    assert plan["would_be_refused"] is True
    assert plan["refusal"] == plan["refusals"][0]["message"]
    # The next window in the client's time with its zone, as `due` shows it.
    opens = (datetime.now(NEW_YORK) + timedelta(days=3)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    assert f"next window opens {opens.isoformat()} (America/New_York)" in plan["refusal"]
    assert plan["refusals"][3]["message"] == (
        "client riverton is locked by run riverton-update-other "
        f"(pid {os.getpid()}, since earlier); one run per client at a time"
    )
    assert text.code == ExitCode.REFUSED
    for kind in kinds:
        assert f"  {kind}: " in text.err
    assert _ledger_size(ledger_url) == before
    # Once the lock is released, the lock is no longer a reason.
    again = json.loads(cli("plan", "riverton", "update", "--json").out)
    assert [refused["kind"] for refused in again["refusals"]] == kinds[:3]


def test_an_action_without_a_window_rule_is_refused_for_its_lock_alone(
    cli: Any, ledger_url: str, private_var: Path
) -> None:
    """A backup needs no window, diagnostic or approval: with riverton's lock held and no
    diagnostic on record, the lock is its only reason."""
    holder = LockHolder(run_id="riverton-update-other", pid=os.getpid(), started="earlier")
    with client_lock(private_var, "riverton", holder):
        plan = json.loads(cli("plan", "riverton", "backup", "--json").out)
    assert [refused["kind"] for refused in plan["refusals"]] == ["lock"]


def test_only_an_approval_of_this_client_and_action_lifts_the_approval_rule(
    cli: Any, ledger_url: str, inventories: Path, edit_contract: Any, private_var: Path
) -> None:
    """riverton's update waits for an approval of riverton's update: one of its harden, or
    of another client's update, is no reason to lift it."""
    edit_contract("riverton", _closed_now)
    settings = Settings(inventories=inventories, ledger_url=ledger_url, var_dir=private_var)
    record_approval(settings, "riverton", "harden", "I. Holm", "CHG-1 (harden only)")
    record_approval(settings, "alpenhof", "update", "B. Keller", "CHG-2 (alpenhof only)")
    plan = json.loads(cli("plan", "riverton", "update", "--json").out)
    assert [refused["kind"] for refused in plan["refusals"]] == ["window", "diagnostic", "approval"]
    record_approval(settings, "riverton", "update", "I. Holm", "CHG-3")
    plan = json.loads(cli("plan", "riverton", "update", "--json").out)
    assert [refused["kind"] for refused in plan["refusals"]] == ["window", "diagnostic"]


def test_a_crashed_holder_is_no_reason(
    cli: Any, edit_contract: Any, private_var: Path, tmp_path: Path
) -> None:
    """A lock file naming a process that is gone is a crashed run's: the kernel released it."""
    edit_contract("alpenhof", always_open)
    gone = os.fork()
    if gone == 0:  # pragma: no cover - the child leaves at once
        os._exit(0)
    os.waitpid(gone, 0)
    locks = private_var / "locks"
    locks.mkdir(parents=True)
    (locks / "alpenhof.lock").write_text(
        json.dumps({"run_id": "crashed", "pid": gone, "started": "earlier"})
    )
    plan = json.loads(cli("plan", "alpenhof", "check", "--json").out)
    assert plan["refusals"] == []


def test_plan_help_says_it_records_nothing() -> None:
    """No option of plan claims to be recorded; those a run records say plan does not."""
    helps = {param.name: getattr(param, "help", "") or "" for param in plan_command.params}
    assert not [
        name for name, text in helps.items() if "(recorded)" in text or ", recorded" in text
    ]
    for name in ("check", "emergency"):
        assert helps[name].endswith("; plan records nothing."), name
    for name in ("reason", "ticket", "incident"):
        assert helps[name].endswith("(checked as a run would; plan records nothing)."), name
    assert "Records nothing." in (plan_command.help or "")
    run_helps = {param.name: getattr(param, "help", "") or "" for param in run_command.params}
    assert run_helps["reason"] == "Why this run (recorded)."
