"""``report``: the client's regular report (HTML and PDF) for a period.

Exit codes: 0 once written and recorded; 2 for bad input (unknown client, malformed
period, a period in the future: nothing written); 4 when the ledger or the files
cannot be written.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from webmg_ops.ansible.vault import vault_password_file
from webmg_ops.service.report import write_client_report
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings, vault_option


@click.command("report")
@click.argument("client")
@click.option(
    "--period",
    metavar="YYYY-MM|YYYY-Qn",
    default=None,
    help="The month or quarter (default: the last complete one of the level's cadence).",
)
@vault_option
@json_option
@pass_settings
def report_command(
    settings: Settings, client: str, period: str | None, vault_file: str | None, as_json: bool
) -> None:
    """Write CLIENT's report for a period from the ledger and the samples: availability,
    incidents and SLA clocks, maintenance runs, risks and decisions, and the proof of
    record (the ledger's checkpoint at the period's end, signed with the agency's key
    when there is one). Files: var/reports/CLIENT/PERIOD/report.{html,pdf}."""
    document = write_client_report(
        settings, client, period, datetime.now(UTC), vault_password_file(vault_file)
    )
    if as_json:
        emit_json(document)
        return
    figures = document["figures"]
    console.print(f"report of {figures['client']} for {figures['period']} written:")
    console.print(f"  {document['html']}")
    console.print(f"  {document['pdf']}")
    console.print(f"verify its proof of record with: {document['verify']}")


COMMANDS: tuple[click.Command, ...] = (report_command,)
