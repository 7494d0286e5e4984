"""``webmg-ops ledger ...``: verify, head and export the ledger; set up its roles.

verify, head and export only read: a ledger that does not exist yet is an
empty ledger, and nothing is created. setup-roles is the administrator's
step that gives a PostgreSQL ledger an owner and an append-only writer.
"""

from __future__ import annotations

import os
from typing import TextIO, cast

import click
from rich.markup import escape

from webmg_ops.ansible.vault import Vault, vault_password_file
from webmg_ops.cli.common import console, emit_json, json_option, pass_settings, vault_option
from webmg_ops.engine.offsite_step import PublishedCheckpoints, read_published_checkpoints
from webmg_ops.errors import BadInput, EnvironmentProblem, ExitCode
from webmg_ops.ledger import (
    EXPORT_FORMATS,
    ExportFormat,
    export_entries,
    open_ledger,
    parse_checkpoint,
    parse_utc,
    verify_ledger,
)
from webmg_ops.ledger.roles import (
    ADMIN_URL_VARIABLE,
    DEFAULT_OWNER,
    DEFAULT_WRITER,
    OWNER_PASSWORD_VARIABLE,
    WRITER_PASSWORD_VARIABLE,
    setup_roles,
)
from webmg_ops.settings import Settings


@click.group("ledger")
def ledger_group() -> None:
    """Verify, checkpoint and export the tamper-evident ledger."""


@ledger_group.command("verify")
@click.option(
    "--checkpoint",
    metavar="SEQ:HASH",
    help="A head printed earlier (e.g. in a client report): also prove that the "
    "history up to it was neither rewritten nor truncated.",
)
@click.option(
    "--against-published",
    is_flag=True,
    help="Also compare with every checkpoint published on the clients' offsite targets "
    "after each run: proves the history was not rewritten and re-hashed since.",
)
@vault_option
@json_option
@pass_settings
def verify_command(
    settings: Settings,
    checkpoint: str | None,
    against_published: bool,
    vault_file: str | None,
    as_json: bool,
) -> int:
    """Recompute the hash chain and name the first broken entry.

    Exits 0 if the ledger is intact (an empty or missing ledger is intact),
    1 if an entry was altered, removed, reordered or, with --checkpoint or
    --against-published, history was rewritten or cut (or an object in a
    checkpoints folder is not a valid checkpoint), 4 if an offsite target
    could not be read.
    """
    expected = parse_checkpoint(checkpoint) if checkpoint is not None else None
    fetched = (
        read_published_checkpoints(settings, Vault(vault_password_file(vault_file)))
        if against_published
        else None
    )
    published = [(item.checkpoint, item.source) for item in fetched.checkpoints] if fetched else []
    with open_ledger(settings.ledger_url, create=False) as ledger:
        report = verify_ledger(ledger, expected, published)
    if fetched is not None and not fetched.targets:
        raise EnvironmentProblem(
            "--against-published: no client's contract names an offsite target, "
            "so no checkpoint was published to compare with"
        )
    if fetched is not None:
        _say_published(fetched)
    ok = report.ok and not (fetched and fetched.invalid)
    if as_json:
        document = report.to_document()
        if fetched is not None:
            document["published"] = {
                "targets": list(fetched.targets),
                "unreadable": list(fetched.unreadable),
                "invalid": list(fetched.invalid),
            }
        emit_json(document)
    elif report.ok:
        head = f"head {report.head}" if report.head else "empty ledger"
        compared = (
            f", agrees with {report.published_compared} published checkpoint(s)"
            if fetched is not None
            else ""
        )
        console.print(
            f"Ledger intact: {report.entries_checked} entries checked, {head}{compared}.",
            soft_wrap=True,
        )
    else:
        reason = escape(report.reason or "")
        console.print(
            f"[bold red]Ledger broken at entry {report.first_bad_seq}[/]: {reason} "
            f"({report.entries_checked} entries intact before it).",
            soft_wrap=True,
        )
    if ok and fetched is not None and fetched.unreadable:
        # What could not be read proves nothing either way: not a pass.
        raise EnvironmentProblem(
            "cannot compare with every published checkpoint: " + "; ".join(fetched.unreadable)
        )
    return ExitCode.OK if ok else ExitCode.FAILED


def _say_published(fetched: PublishedCheckpoints) -> None:
    """Print, on stderr, what reading the published checkpoints found wrong."""
    for where in fetched.unreadable:
        console.print(f"[bold red]Not read[/]: {escape(where)}", soft_wrap=True)
    for problem in fetched.invalid:
        console.print(f"[bold red]Not a valid checkpoint[/]: {escape(problem)}", soft_wrap=True)


@ledger_group.command("head")
@json_option
@pass_settings
def head_command(settings: Settings, as_json: bool) -> None:
    """Print the ledger's head as SEQ:HASH on stdout, to keep as a checkpoint.

    An empty ledger has no head: stdout stays empty (with --json, "checkpoint"
    is null and "seq" 0), a note goes to stderr, and the exit status is 0.
    """
    with open_ledger(settings.ledger_url, create=False) as ledger:
        head = ledger.head()
    if as_json:
        emit_json(
            {
                "checkpoint": None if head is None else str(head),
                "seq": 0 if head is None else head.seq,
                "hash": None if head is None else head.hash,
            }
        )
    elif head is None:
        console.print("The ledger is empty: no head yet.")
    else:
        click.echo(str(head))


@ledger_group.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    required=True,
    help="jsonl: one canonical JSON entry per line, with its hashes; "
    "csv: a header row, then one row per entry.",
)
@click.option("--client", metavar="CLIENT", help="Only this client's entries.")
@click.option(
    "--since",
    metavar="ISO-TIME",
    help="Only entries at or after this time (e.g. 2024-05-01 or 2024-05-01T08:00:00+02:00; "
    "no offset means UTC).",
)
@click.option(
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Write to FILE (replaced whole once complete) instead of stdout.",
)
@pass_settings
def export_command(
    settings: Settings, fmt: ExportFormat, client: str | None, since: str | None, output: str
) -> None:
    """Export entries, oldest first, for a client or an auditor."""
    try:
        since_time = parse_utc(since) if since is not None else None
    except BadInput as error:
        raise BadInput(f"--since: {error.message}") from None
    with open_ledger(settings.ledger_url, create=False) as ledger:
        try:
            out_file = click.open_file(output, "w", encoding="utf-8", atomic=output != "-")
        except OSError as error:
            raise BadInput(f"--output: cannot write {output}: {error.strerror or error}") from None
        with out_file as out:
            count = export_entries(ledger, fmt, cast(TextIO, out), client=client, since=since_time)
    if output != "-":
        console.print(f"Exported {count} entries to {escape(output)}.", soft_wrap=True)


@ledger_group.command("setup-roles")
@click.option(
    "--owner",
    default=DEFAULT_OWNER,
    show_default=True,
    help="Role that owns the tables and runs the migrations (kept by the administrator).",
)
@click.option(
    "--writer",
    default=DEFAULT_WRITER,
    show_default=True,
    help="Role the tool runs with (WEBMG_LEDGER_URL): SELECT and INSERT only.",
)
@json_option
def setup_roles_command(owner: str, writer: str, as_json: bool) -> None:
    """Create a PostgreSQL ledger's owner and append-only writer roles, and migrate.

    Connects with the administrator's URL from WEBMG_LEDGER_ADMIN_URL (a superuser
    of the ledger's database; never an argument). Passwords, when given, come
    from WEBMG_LEDGER_OWNER_PASSWORD and WEBMG_LEDGER_WRITER_PASSWORD; without them a
    role keeps its password (a new one has none: pg_hba.conf decides how it
    logs in). Run it again after upgrading webmg-ops: it migrates as the owner
    and grants the writer again.
    """
    admin_url = os.environ.get(ADMIN_URL_VARIABLE)
    if not admin_url:
        raise BadInput(
            f"set {ADMIN_URL_VARIABLE} to a superuser's URL of the ledger's database "
            "(for example postgresql+psycopg://postgres@db.example/webmg_ledger)"
        )
    report = setup_roles(
        admin_url,
        owner=owner,
        writer=writer,
        owner_password=os.environ.get(OWNER_PASSWORD_VARIABLE) or None,
        writer_password=os.environ.get(WRITER_PASSWORD_VARIABLE) or None,
    )
    if as_json:
        emit_json(report.to_document())
        return
    created = ", ".join(report.created) or "none (both existed)"
    console.print(
        f"Ledger roles ready in database {escape(report.database)} "
        f"(schema {escape(report.schema)}, revision {report.revision}): owner "
        f"{escape(report.owner)}, writer {escape(report.writer)} with "
        f"{', '.join(report.writer_privileges)} only; created: {escape(created)}.\n"
        f"Point WEBMG_LEDGER_URL at the writer role; keep the owner's and the "
        f"administrator's credentials off the controller.",
        soft_wrap=True,
    )
