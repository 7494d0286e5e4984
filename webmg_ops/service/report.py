"""``report``: write a client's report for a period and record that it was written.

The report is written from the ledger and the samples only (no host is queried),
in the client's time zone. Its files (HTML, PDF, the checkpoint note that proves
the record) are written under ``<var_dir>/reports/<client>/<period>/``; then a
``report-written`` entry names the period, the files and their sha256, which is
what ``due`` reads to know when the next report is due.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from webmg_ops.ansible.connection import read_inventory_variables
from webmg_ops.ansible.vault import Vault, client_secrets
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Checkpoint, Ledger, NewEntry, open_ledger
from webmg_ops.ledger.note import (
    checkpoint_origin,
    default_key_path,
    make_checkpoint,
    public_key_path,
    read_signing_key,
)
from webmg_ops.ledger.samples import FailedSample, page_budget_max, read_days, read_failures
from webmg_ops.reports.client_report import (
    render_html,
    render_pdf,
    report_dir,
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
from webmg_ops.service.records import ledger_recorder
from webmg_ops.service.report_figures import report_figures
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
        days = read_days(ledger, client.name, first=period.first_day, last=period.last_day)
        by_check: dict[str, list[FailedSample]] = defaultdict(list)
        for failure in read_failures(ledger, client.name, since=start, until=end):
            by_check[failure.sample.check].append(failure)
        budget = page_budget_max(ledger, client.name, since=start, until=end)
        checkpoint = checkpoint_at(ledger, end)
    figures = json.loads(
        secrets.mask_text(
            json.dumps(
                report_figures(client, period, entries, days, by_check, budget, checkpoint, now)
            )
        )
    )
    key_path = default_key_path(settings.var_dir)
    key = read_signing_key(key_path) if key_path.exists() else None
    note = make_checkpoint(checkpoint_origin(), checkpoint, key)
    folder = report_dir(settings.var_dir, client.name, period.name)
    checkpoint_file = folder / "checkpoint.txt"
    command = ["webmg-ops", "ledger", "verify", "--checkpoint", str(checkpoint_file)]
    if key is not None:
        command += ["--key", str(public_key_path(key_path))]
    verify_command = shlex.join(command)
    language = str(client.contract.language)
    html = render_html(
        figures, note.text, key.name if key else None, verify_command, now, secrets, language
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = write_report_files(folder, html, render_pdf(html, folder), note.text)
    written = {
        "html": str(files.html),
        "pdf": str(files.pdf),
        "checkpoint": str(files.checkpoint),
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
                    "signed": key is not None,
                },
            )
        ]
    )
    return {
        **written,
        "sha256": sha256,
        "seq": entry.seq,
        "signed_by": key.name if key else None,
        "verify": verify_command,
        "language": language,
        "figures": figures,
    }
