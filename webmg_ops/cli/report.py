"""``report``: the client's regular report (HTML and PDF) for a period.

Exit codes: 0 once written and recorded (and, with ``--publish``, published and
mailed); 1 when a published report's mail to the business owner failed (the
publication is recorded, as ``tick`` exits 1 for a notification left pending); 2 for
bad input (unknown client, malformed period, a period in the future: nothing
written); 4 when the ledger or the files cannot be written, or, with ``--publish``,
when the report cannot be uploaded (no offsite target, no keys, S3 unreachable or
refusing): the report stays written and recorded, unpublished.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape

from webmg_ops.ansible.vault import vault_password_file
from webmg_ops.errors import ExitCode
from webmg_ops.service.report import write_client_report
from webmg_ops.service.report_publish import publish_client_report
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings, stdout_console, vault_option


@click.command("report")
@click.argument("client")
@click.option(
    "--period",
    metavar="YYYY-MM|YYYY-Qn",
    default=None,
    help="The month or quarter (default: the last complete one of the level's cadence).",
)
@click.option(
    "--publish",
    is_flag=True,
    help=(
        "Then upload the files to the client's offsite target and mail their links "
        "(valid reporting.link_days) to its business owner."
    ),
)
@vault_option
@json_option
@pass_settings
def report_command(
    settings: Settings,
    client: str,
    period: str | None,
    publish: bool,
    vault_file: str | None,
    as_json: bool,
) -> int:
    """Write CLIENT's report for a period from the ledger and the samples: availability,
    incidents and SLA clocks, maintenance runs, risks and decisions, and the proof of
    record (the ledger's checkpoint at the period's end, signed with the agency's key
    when there is one). Files: var/reports/CLIENT/PERIOD/report.{html,pdf}."""
    password_file = vault_password_file(vault_file)
    document = write_client_report(settings, client, period, datetime.now(UTC), password_file)
    if not as_json:
        figures = document["figures"]
        console.print(f"report of {figures['client']} for {figures['period']} written:")
        console.print(f"  {document['html']}")
        console.print(f"  {document['pdf']}")
        console.print(f"verify its proof of record with: {document['verify']}")
    published = (
        publish_client_report(settings, client, document, password_file) if publish else None
    )
    code = ExitCode.OK if published is None or published["notified"] else ExitCode.FAILED
    if as_json:
        emit_json({**document, "published": published} if published else document)
        return int(code)
    if published is not None:
        _print_published(published)
    return int(code)


def _print_published(published: dict[str, Any]) -> None:
    """Print the links on stdout (what is handed on) and the rest on stderr."""
    console.print(
        f"published to {published['endpoint']} (bucket {published['bucket']}), "
        f"links valid until {published['expires_at']}:"
    )
    for name, item in published["objects"].items():
        stdout_console.print(f"{name} {item['link']}", markup=False, highlight=False)
    if published["notified"]:
        console.print(f"mailed to the business owner {published['recipient']}")
    else:
        console.print(
            f"[red]the business owner was not notified:[/red] {escape(published['reason'])}"
        )
