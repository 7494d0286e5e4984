"""``webmg-ops ledger ...``: verify, head, checkpoint and export the ledger; keys and roles.

verify, head, checkpoint and export only read the ledger and create nothing:
a SQLite ledger that does not exist (a fresh checkout's, or a mistyped path)
is refused with exit 2, never reported as an intact, empty ledger. checkpoint writes
the head as a C2SP signed note, signed with the agency's key that keygen
creates. setup-roles is the administrator's step that gives a PostgreSQL
ledger an owner and an append-only writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO, cast

import click
from rich.markup import escape

from webmg_ops.ansible.vault import Vault, vault_password_file
from webmg_ops.cli.common import console, emit_json, json_option, pass_settings, vault_option
from webmg_ops.config.instants import parse_instant
from webmg_ops.engine.offsite_step import PublishedCheckpoints, read_published_checkpoints
from webmg_ops.errors import BadInput, EnvironmentProblem, ExitCode
from webmg_ops.ledger import (
    EXPORT_FORMATS,
    Checkpoint,
    ExportFormat,
    export_entries,
    open_ledger,
    parse_checkpoint,
    verify_ledger,
)
from webmg_ops.ledger.note import (
    CheckpointNote,
    VerifierKey,
    check_signature,
    checkpoint_origin,
    default_key_path,
    generate_signing_key,
    make_checkpoint,
    read_checkpoint_note,
    read_signing_key,
    read_verifier_key,
    write_signing_key,
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
    metavar="SEQ:HASH|FILE",
    help="A head printed earlier (e.g. in a client report) or a checkpoint file written by "
    "'ledger checkpoint': also prove that the history up to it was neither rewritten nor "
    "truncated.",
)
@click.option(
    "--key",
    "key",
    metavar="PUBKEY",
    help="The agency's public key (its .pub file, or the NAME+KEYID+BASE64 text): the "
    "--checkpoint file must carry a valid signature by it.",
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
    key: str | None,
    against_published: bool,
    vault_file: str | None,
    as_json: bool,
) -> int:
    """Recompute the hash chain and name the first broken entry.

    Exits 0 if the ledger is intact (an empty ledger is intact),
    1 if an entry was altered, removed, reordered or, with --checkpoint or
    --against-published, history was rewritten or cut (or an object in a
    checkpoints folder is not a valid checkpoint), or the checkpoint file's
    signature is not the --key's, 2 if the checkpoint file or the key cannot
    be read or the ledger does not exist, 4 if an offsite target could not be read.
    """
    expected, note, verifier, signature_problem = _read_expected(checkpoint, key)
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
    ok = report.ok and not (fetched and fetched.invalid) and signature_problem is None
    if signature_problem is not None:
        console.print(
            f"[bold red]Checkpoint signature refused[/]: {escape(signature_problem)}.",
            soft_wrap=True,
        )
    if as_json:
        document = report.to_document()
        if note is not None:
            document["checkpoint"] = {
                "origin": note.origin,
                "seq": note.checkpoint.seq,
                "hash": note.checkpoint.hash,
                "key": None if verifier is None else str(verifier),
                "signature_ok": None if verifier is None else signature_problem is None,
                "signature_problem": signature_problem,
            }
            if signature_problem is not None:
                document["ok"] = False  # as the exit status says: the checkpoint is refused
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
        if note is not None and signature_problem is None:
            by = f" signed by {escape(verifier.name)}" if verifier is not None else ""
            compared += (
                f", extends the checkpoint{by} of {note.checkpoint.seq} entries "
                f"of {escape(note.origin)}"
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


def _read_expected(
    checkpoint: str | None, key: str | None
) -> tuple[Checkpoint | None, CheckpointNote | None, VerifierKey | None, str | None]:
    """Given --checkpoint and --key, return the checkpoint to hold the ledger to, the
    note it came from (None for SEQ:HASH), the key read and why the note's signature
    is refused (None: fine or not checked).

    Raise BadInput if the checkpoint is neither SEQ:HASH nor a readable
    checkpoint file, or the key cannot be read.
    """
    if checkpoint is None:
        if key is not None:
            raise BadInput("--key checks the signature of a --checkpoint FILE: give one")
        return None, None, None, None
    path = Path(checkpoint)
    if not path.exists():
        try:
            given = parse_checkpoint(checkpoint)
        except BadInput as error:
            raise BadInput(
                f"{error.message}, or a checkpoint file (none at {checkpoint})"
            ) from None
        if key is not None:
            raise BadInput("--key checks a signed checkpoint FILE, not SEQ:HASH text")
        return given, None, None, None
    verifier: VerifierKey | None = read_verifier_key(key) if key is not None else None
    note = read_checkpoint_note(path)
    problem = check_signature(note, verifier) if verifier is not None else None
    if problem is not None:
        # A checkpoint whose signature fails is no evidence: the chain alone is verified.
        return None, note, verifier, problem
    if verifier is None:
        console.print(
            "Checkpoint signature not checked: give the agency's public key with --key.",
            soft_wrap=True,
        )
    # The empty ledger's checkpoint holds for any ledger: every chain starts at genesis.
    expected = note.checkpoint if note.checkpoint.seq > 0 else None
    return expected, note, verifier, problem


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


@ledger_group.command("keygen")
@click.option(
    "--key",
    "key_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to keep the private key (default: WEBMG_SIGNING_KEY, else "
    "<var>/keys/ledger-signing.key); the public key goes beside it, with .pub added.",
)
@click.option(
    "--name",
    default="webmg-ops-agency",
    show_default=True,
    help="The key's name, as signature lines show it (no spaces or '+').",
)
@json_option
@pass_settings
def keygen_command(settings: Settings, key_path: Path | None, name: str, as_json: bool) -> None:
    """Create the agency's Ed25519 key that signs ledger checkpoints.

    The private key is written 0600 in a 0700 folder and never printed; an
    existing key is never replaced (exit 2). Prints the public key on stdout
    (NAME+KEYID+BASE64, what clients verify checkpoints with) and where both
    halves are.
    """
    path = key_path or default_key_path(settings.var_dir)
    key = generate_signing_key(name)
    public_path = write_signing_key(path, key)
    verifier = key.verifier
    if as_json:
        emit_json(
            {
                "key": str(path),
                "public_key_file": str(public_path),
                "public_key": str(verifier),
                "name": verifier.name,
                "key_id": verifier.key_id.hex(),
            }
        )
        return
    click.echo(str(verifier))
    console.print(
        f"Signing key written to {escape(str(path))} (private, 0600); its public key, "
        f"printed above, is in {escape(str(public_path))}: give it to the clients.",
        soft_wrap=True,
    )


@ledger_group.command("checkpoint")
@click.option(
    "--sign",
    is_flag=True,
    help="Sign the checkpoint with the agency's key (see --key).",
)
@click.option(
    "--key",
    "key_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signing key (default: WEBMG_SIGNING_KEY, else <var>/keys/ledger-signing.key).",
)
@click.option(
    "--origin",
    metavar="ORIGIN",
    help="The checkpoint's first line, naming this ledger (default: WEBMG_LEDGER_ORIGIN, "
    "else webmg-ops/ledger).",
)
@click.option(
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (default: <var>/checkpoints/<count>-<hash>.txt).",
)
@json_option
@pass_settings
def checkpoint_command(
    settings: Settings,
    sign: bool,
    key_path: Path | None,
    origin: str | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """Write the ledger's head as a checkpoint: origin, entry count and head hash.

    The file is a C2SP signed note (tlog-checkpoint body; with --sign, a
    blank line and the signature line of the agency's key). Anyone holding
    it and the agency's public key later proves, with 'ledger verify
    --checkpoint FILE --key PUBKEY', that the ledger still extends it.
    Prints the file's path (with --json, a document naming the "file").
    Exit 2 if the key cannot be read or the origin is malformed.
    """
    if key_path is not None and not sign:
        raise BadInput("--key names the key to --sign with: add --sign")
    line = checkpoint_origin(origin)
    key = read_signing_key(key_path or default_key_path(settings.var_dir)) if sign else None
    with open_ledger(settings.ledger_url, create=False) as ledger:
        head = ledger.head()
    note = make_checkpoint(line, head, key)
    seq, hash_ = note.checkpoint.seq, note.checkpoint.hash
    path = output or settings.var_dir / "checkpoints" / f"{seq:012d}-{hash_}.txt"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with click.open_file(str(path), "w", encoding="utf-8", atomic=True) as out:
            out.write(note.text)
    except OSError as error:
        raise BadInput(
            f"cannot write the checkpoint to {path}: {error.strerror or error}"
        ) from None
    if as_json:
        emit_json(
            {
                "file": str(path),
                "origin": note.origin,
                "seq": seq,
                "hash": hash_,
                "signed": key is not None,
                "key": None if key is None else str(key.verifier),
            }
        )
        return
    click.echo(str(path))
    signed = f", signed by {escape(key.name)}" if key is not None else ", unsigned"
    console.print(f"Checkpoint of {seq} entries (head {seq}:{hash_}){signed}.", soft_wrap=True)


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
    help="Only entries at or after this time, with its offset "
    "(e.g. 2024-05-01T08:00+02:00 or 2024-05-01T06:00Z).",
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
    since_time = parse_instant("--since", since) if since is not None else None
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
