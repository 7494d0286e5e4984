"""The client's report on the lab: after a read-only check run and a probe of the demo
client, ``report`` for the current month lists every run the ledger holds for the
month with its outcome and a link to its run log that exists, its PDF holds the same
run ids, and no value of the client's vault appears in the HTML or the PDF."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pytest
from support.lab import Lab

from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import load_client
from webmg_ops.reports.runlog import contract_timezone

pytestmark = pytest.mark.lab

# continuous-evolution: its level monitors availability, so the report has samples too.
CLIENT = "terre-solidaire"


def test_the_report_of_the_month_lists_the_lab_runs_and_masks_the_vault(lab: Lab) -> None:
    """Every run-finished entry of the month (read from the ledger here) is in the
    report with its outcome; each link resolves to the run log the run wrote."""
    checked = lab.cli("run", CLIENT, "check", "--reason", "report test: a run to report")
    assert checked.returncode == 0, checked.stderr
    probed = lab.cli("monitor", CLIENT, "--once", "--json")
    assert probed.returncode == 0, probed.stderr
    zone = contract_timezone(load_client(lab.inventories, CLIENT).contract)
    month = datetime.now(UTC).astimezone(zone).strftime("%Y-%m")

    done = lab.cli("report", CLIENT, "--period", month, "--json")

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    first = datetime.fromisoformat(document["figures"]["start"])
    expected = {
        entry.payload["run_id"]: entry.payload["outcome"]
        for entry in lab.entries("run-finished", CLIENT)
        if entry.at >= first
    }
    shown = {run["run_id"]: run["outcome"] for run in document["figures"]["actions"]["runs"]}
    assert shown == expected and expected
    folder = Path(document["html"]).parent
    for run in document["figures"]["actions"]["runs"]:
        assert (folder / run["log"]).resolve().is_file()
    html = Path(document["html"]).read_text()
    # Without any white space: a long run id may be wrapped in its table cell.
    pdf = re.sub(
        r"\s+", "", "".join(p.extract_text() or "" for p in pypdf.PdfReader(document["pdf"]).pages)
    )
    for run_id in expected:
        assert run_id in html and run_id in pdf
    vault = Vault(Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]))
    for value in vault.values(lab.inventories / CLIENT):
        if len(value) >= 6:  # short values (a port, "yes") are not secrets worth a search
            assert value not in html and re.sub(r"\s+", "", value) not in pdf
