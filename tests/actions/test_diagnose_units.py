"""What the diagnostic reads of the ledger: the last backup and drill on record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from webmg_ops.actions.diagnose import backups_on_record
from webmg_ops.config.clients import load_client
from webmg_ops.ledger import open_ledger
from webmg_ops.runs.records import RUN_FINISHED

#: alpenhof's level (stability-security) backs up daily (DESIGN's level table).
CADENCE = timedelta(days=1)


def test_no_backup_on_record_is_said_so(inventories: Path, ledger_url: str) -> None:
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        failed = ledger.append(RUN_FINISHED, "alpenhof", {"action": "backup", "outcome": "failed"})
        found = backups_on_record(ledger, client, failed.at)
    assert found == {
        "last_backup": None,
        "last_drill": None,
        "repository": client.contract.backup.repository,
    }


def test_the_last_backup_on_record_is_read_with_its_age(inventories: Path, ledger_url: str) -> None:
    client = load_client(inventories, "alpenhof")
    with open_ledger(ledger_url) as ledger:
        ledger.append(RUN_FINISHED, "alpenhof", {"action": "backup", "outcome": "succeeded"})
        # A dry run proves nothing about backups; another client's backup is not this one's.
        ledger.append(
            RUN_FINISHED, "alpenhof", {"action": "backup", "outcome": "succeeded", "check": True}
        )
        ledger.append(RUN_FINISHED, "riverton", {"action": "backup", "outcome": "succeeded"})
        (last, _dry) = list(ledger.entries(client="alpenhof"))[-2:]
        fresh = backups_on_record(ledger, client, last.at + CADENCE / 2)
        late = backups_on_record(ledger, client, last.at + 2 * CADENCE)
    assert fresh["last_backup"] == last.at.isoformat()
    assert (fresh["age"], fresh["overdue"]) == ("12h", False)
    assert (late["age"], late["overdue"]) == ("2d", True)
    assert fresh["last_drill"] is None
