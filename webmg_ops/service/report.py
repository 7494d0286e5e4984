"""``report``: write a client's report for a period and record that it was written.

The report is written from the ledger and the samples only (no host is queried),
in the client's time zone. Its files (HTML, PDF, the checkpoint note that proves
the record) are written under ``<var_dir>/reports/<client>/<period>/``; then a
``report-written`` entry names the period, the files and their sha256, which is
what ``due`` reads to know when the next report is due.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from webmg_ops.ansible.connection import read_inventory_variables
from webmg_ops.ansible.vault import Vault, client_secrets
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Checkpoint, Ledger, NewEntry, open_ledger
from webmg_ops.ledger.export import export_entries
from webmg_ops.ledger.note import agency_checkpoint
from webmg_ops.ledger.samples import FailedSample, page_budget_max, read_days, read_failures
from webmg_ops.reports.client_report import (
    CHECKPOINT_FILE,
    render_html,
    render_pdf,
    report_dir,
    write_audit_files,
    write_report_files,
)
from webmg_ops.reports.period import (
    Period,
    cadence_kind,
    last_complete_period,
    parse_period,
)
from webmg_ops.reports.runlog import contract_timezone
from webmg_ops.runs.records import REPORT_WRITTEN
from webmg_ops.secrets import SecretSet
from webmg_ops.service.records import ledger_recorder
from webmg_ops.service.report_figures import report_figures, year_before
from webmg_ops.service.report_sectors import AUDIT_CSV, AUDIT_JSON
from webmg_ops.settings import Settings


def checkpoint_at(ledger: Ledger, end: datetime) -> Checkpoint | None:
    """Given a ledger and an aware instant, return the checkpoint of its last entry
    recorded before that instant (None: none then). Entries are appended in time
    order, so it is the entry just before the first one at or after ``end``."""
    following = next(iter(ledger.entries(since=end, limit=1)), None)
    if following is None:
        return ledger.head()
    entry = ledger.get(following.seq - 1) if following.seq > 1 else None
    return Checkpoint(entry.seq, entry.hash) if entry is not None else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_export_files(
    ledger: Ledger, client: str, start: datetime, end: datetime, secrets: SecretSet
) -> dict[str, str]:
    """Given a ledger, a client, the period's bounds and the client's secrets, return the
    audit export's files (name -> text): the period's entries of the client as
    ``ledger export`` writes them, CSV and a JSON array of the JSON Lines objects (each
    with its hashes, so an auditor can recompute the chain). Secrets are masked as the
    report masks them: an entry whose free text held one no longer hashes to its stored
    hash, which is the price of never handing a secret out.

    Raise EnvironmentProblem if the database fails.
    """
    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    export_entries(ledger, "csv", as_csv, client=client, since=start, until=end)
    export_entries(ledger, "jsonl", as_jsonl, client=client, since=start, until=end)
    lines = as_jsonl.getvalue().splitlines()
    as_json = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    return {
        AUDIT_CSV: secrets.mask_text(as_csv.getvalue()),
        AUDIT_JSON: secrets.mask_text(as_json),
    }


def resolve_period(text: str | None, cadence: str, now: datetime, zone: Any) -> Period:
    """Given ``--period`` (None: the last complete period of the cadence), the cadence,
    an aware instant and the client's time zone, return the period.

    Raise BadInput for a malformed period or one that has not started yet.
    """
    if text is None:
        return last_complete_period(cadence, now, zone)
    period = parse_period(text)
    if period.start(zone) > now:
        raise BadInput(f"--period {text} is in the future: it starts {period.first_day}")
    return period


def write_client_report(
    settings: Settings,
    client_name: str,
    period_text: str | None,
    now: datetime,
    vault_password_file: Path | None = None,
) -> dict[str, Any]:
    """Given the settings, a client, ``--period`` (None: the default), an aware instant
    and the vault password file (None: none), write the client's report and record it;
    return the ``--json`` document (files, sha256, the entry's seq and the figures shown).

    The client's secrets (vault values, secret-named variables, the vault password)
    are masked in the report and the document, as run logs mask them: free text of
    the ledger (a title, a note) could hold one.

    Raise BadInput for an unknown client, a bad period or an inventory whose encrypted
    variables need the vault password (nothing written),
    EnvironmentProblem if the ledger or the files cannot be written.
    """
    client = load_client(settings.inventories, client_name)
    zone = contract_timezone(client.contract)
    period = resolve_period(period_text, cadence_kind(client.policy.cadence("report")), now, zone)
    start, end = period.start(zone), period.end(zone)
    vault = Vault(vault_password_file)
    secrets = client_secrets(
        client.folder, vault, read_inventory_variables(client.folder, vault).variables
    )
    with open_ledger(settings.ledger_url) as ledger:
        entries = list(ledger.entries(client=client.name))
        # From the same period a year earlier, for the year-on-year column.
        earlier = year_before(period)
        first = earlier.first_day if earlier is not None else period.first_day
        days = read_days(ledger, client.name, first=first, last=period.last_day)
        by_check: dict[str, list[FailedSample]] = defaultdict(list)
        for failure in read_failures(ledger, client.name, since=start, until=end):
            by_check[failure.sample.check].append(failure)
        budget = page_budget_max(ledger, client.name, since=start, until=end)
        checkpoint = checkpoint_at(ledger, end)
        audit = (
            audit_export_files(ledger, client.name, start, end, secrets)
            if client.policy.get("reporting.audit_export")
            else {}
        )
    figures = json.loads(
        secrets.mask_text(
            json.dumps(
                report_figures(client, period, entries, days, by_check, budget, checkpoint, now)
            )
        )
    )
    # A key that cannot be used is an error here (strict): a report is asked for, and
    # one the agency meant to sign must not go out unsigned.
    signed = agency_checkpoint(settings.var_dir, checkpoint)
    folder = report_dir(settings.var_dir, client.name, period.name)
    verify_command = signed.verify_command(folder / CHECKPOINT_FILE)
    language = str(client.contract.language)
    html = render_html(
        figures, signed.note.text, signed.signed_by, verify_command, now, secrets, language
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = write_report_files(folder, html, render_pdf(html, folder), signed.note.text)
    written = {
        "html": str(files.html),
        "pdf": str(files.pdf),
        "checkpoint": str(files.checkpoint),
        **{
            name.replace(".", "_"): str(path)
            for name, path in write_audit_files(folder, audit).items()
        },
    }
    sha256 = {name: _sha256(Path(path)) for name, path in written.items()}
    (entry,) = ledger_recorder(settings)(
        [
            NewEntry(
                REPORT_WRITTEN,
                client.name,
                {
                    "period": period.name,
                    "files": {
                        name: {"path": path, "sha256": sha256[name]}
                        for name, path in written.items()
                    },
                    "checkpoint": {
                        "seq": figures["proof"]["seq"],
                        "hash": figures["proof"]["hash"],
                    },
                    "signed": signed.signed_by is not None,
                },
            )
        ]
    )
    return {
        **written,
        "sha256": sha256,
        "seq": entry.seq,
        "signed_by": signed.signed_by,
        "verify": verify_command,
        "language": language,
        "figures": figures,
    }
