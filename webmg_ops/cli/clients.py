"""Client commands: ``client new``, ``bootstrap``, ``clients``, ``validate``, ``schema``,
``policy``, ``s3-policies``, ``note`` (``due`` and ``drills-due`` are in :mod:`.schedule`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from webmg_ops.ansible.vault import (
    VAULT_PASSWORD_VARIABLE,
    read_vault_password,
    vault_password_file,
)
from webmg_ops.backups.repository import backed_up_hosts
from webmg_ops.backups.s3_policy import host_key_policies
from webmg_ops.config.clients import ContractInvalid, list_client_names, load_client
from webmg_ops.config.contract import Level, Sector, contract_json_schema
from webmg_ops.config.policy import describe_value, policy_document
from webmg_ops.config.reference import contract_reference_markdown
from webmg_ops.config.scaffold import MAINTENANCE_ACCOUNT, NewClient, scaffold_client
from webmg_ops.errors import BadInput, ExitCode, WebmgError
from webmg_ops.remote.first_contact import Login
from webmg_ops.service.bootstrap import bootstrap_hosts
from webmg_ops.service.records import record_note
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings, vault_option
from .runs import confirm_host_key


@click.group("client")
def client_group() -> None:
    """Take on a client: `client new` writes its folder."""


def _next_steps(client: NewClient) -> list[str]:
    name = client.name
    level = (
        f"the level is {client.level.value}: check it against the diagnostic's recommendation"
        if client.level is not None
        else "choose the level with the client and set it in client.yml (level:)"
    )
    return [
        "fill client.yml: replace each value its comments say to replace "
        "(owner, contacts, time zone, windows, scope, backup, fit)",
        f"add your hosts to hosts.yml, then validate: webmg-ops validate {name}",
        f"bootstrap each host with the login the client gave: webmg-ops bootstrap {name} "
        "--user root --key FILE (or --user U --ask-pass); each host key is shown to accept, "
        f"then the maintenance account {MAINTENANCE_ACCOUNT!r} gets passwordless sudo and "
        f"this key:\n     {client.public_key}",
        f"or, for hosts whose account the client made, enrol their keys: webmg-ops enroll {name}",
        f'diagnose it as a prospect: webmg-ops diagnose {name} --reason "scoping"',
        f"{level}; webmg-ops policy {name} shows what it implies",
        "first backup and restore drill: name the repository in client.yml "
        '(backup.repository), prepare the target: webmg-ops run agency target --reason "new '
        f'client {name}", then webmg-ops run {name} backup --reason "first backup" and '
        f'webmg-ops drill {name} --reason "first drill"',
    ]


@client_group.command("new")
@click.argument("name", metavar="NAME")
@click.option(
    "--sector",
    required=True,
    type=click.Choice([sector.value for sector in Sector]),
    help="The client's sector; its preset is added to the policy.",
)
@click.option(
    "--level",
    "level_name",
    type=click.Choice([level.value for level in Level]),
    help="The service level bought (default: none yet, a prospect).",
)
@vault_option
@json_option
@pass_settings
def client_new_command(
    settings: Settings,
    name: str,
    sector: str,
    level_name: str | None,
    vault_file: str | None,
    as_json: bool,
) -> None:
    """Write a new client's folder: a commented contract from its sector's preset, an
    inventory without hosts, an SSH key pair and a vault with a new restic password.

    Exit 2, writing nothing, if NAME is not a slug or exists, or no vault password is given.
    """
    password_file = vault_password_file(vault_file)
    if password_file is None:
        raise BadInput(
            "client new encrypts the client's vault: give the vault password with "
            f"--vault-password-file or {VAULT_PASSWORD_VARIABLE}"
        )
    client = scaffold_client(
        settings.inventories,
        name,
        Sector(sector),
        Level(level_name) if level_name is not None else None,
        read_vault_password(password_file) or b"",
    )
    if as_json:
        emit_json(
            {
                "client": client.name,
                "folder": str(client.folder),
                "level": client.level.value if client.level is not None else None,
                "files": [str(client.folder / file) for file in client.files],
                "public_key": client.public_key,
            }
        )
        return
    console.print(
        f"[green]created[/green] {escape(str(client.folder))} "
        f"({client.level.value if client.level else 'prospect'}, sector {sector}):",
        soft_wrap=True,
    )
    for file in client.files:
        console.print(f"  {escape(str(file))}", soft_wrap=True)
    console.print("Next steps:")
    for number, step in enumerate(_next_steps(client), start=1):
        console.print(f"  {number}. {escape(step)}", soft_wrap=True)


def _read_password(user: str) -> str:
    """Return the login's password: asked on the terminal, else the first line of stdin
    (so a script can pipe it in without putting it on a command line)."""
    if sys.stdin.isatty():
        return str(click.prompt(f"Password of {user}", hide_input=True, err=True))
    return sys.stdin.readline().rstrip("\r\n")


@click.command("bootstrap")
@click.argument("client", metavar="CLIENT")
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@click.option(
    "--user", "login_user", required=True, help="The login the client gave (root, or a sudo user)."
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The login's private key file.",
)
@click.option(
    "--ask-pass",
    is_flag=True,
    help="The login takes a password (and sudo, for a user other than root): asked on the "
    "terminal, or read from the first line of standard input.",
)
@click.option(
    "--accept",
    "accepted",
    multiple=True,
    metavar="SHA256:...",
    help="Accept this host key fingerprint without asking (repeat per host).",
)
@vault_option
@json_option
@pass_settings
def bootstrap_command(
    settings: Settings,
    client: str,
    hosts: tuple[str, ...],
    login_user: str,
    key_file: Path | None,
    ask_pass: bool,
    accepted: tuple[str, ...],
    vault_file: str | None,
    as_json: bool,
) -> int:
    """First contact with CLIENT's servers: their maintenance account, from the client's login.

    Each host's key is shown and must be accepted (as enroll does); then the login the
    client gave makes the maintenance account with the client's key and passwordless sudo,
    and the account is tried before the host key is trusted.

    Exit 2 (nothing done) for bad input, 3 if a host key was not accepted, 1 if a host
    could not be bootstrapped.
    """
    if ask_pass and key_file is not None:
        raise BadInput("give the login's key (--key FILE) or its password (--ask-pass), not both")
    password = _read_password(login_user) if ask_pass else None
    login = Login(login_user, key_file, password)
    results = bootstrap_hosts(
        settings,
        client,
        hosts,
        login=login,
        accepted=set(accepted),
        confirm=None if as_json else confirm_host_key,
        vault_password_file=vault_password_file(vault_file),
    )
    if as_json:
        emit_json([result.document() for result in results])
    else:
        for result in results:
            colour = "green" if result.done else "red"
            console.print(
                f"{escape(result.host)} ({escape(result.address)}) {result.fingerprint}: "
                f"[{colour}]{escape(result.status)}[/{colour}]",
                soft_wrap=True,
            )
    if any(not result.done and not result.refused for result in results):
        return int(ExitCode.FAILED)
    return int(ExitCode.REFUSED if any(result.refused for result in results) else ExitCode.OK)


@click.command("clients")
@json_option
@pass_settings
def clients_command(settings: Settings, as_json: bool) -> None:
    """List the clients, their sector, level and hosts."""
    rows: list[dict[str, Any]] = []
    for name in list_client_names(settings.inventories):
        try:
            client = load_client(settings.inventories, name)
        except WebmgError as error:
            rows.append({"client": name, "valid": False, "error": error.message})
            continue
        rows.append(
            {
                "client": name,
                "valid": True,
                "display_name": client.contract.display_name,
                "sector": client.contract.sector.value,
                "level": client.contract.level_name,
                "hosts": [host.name for host in client.hosts],
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table("client", "name", "sector", "level", "hosts")
    for row in rows:
        if row["valid"]:
            table.add_row(
                row["client"],
                row["display_name"],
                row["sector"],
                row["level"],
                str(len(row["hosts"])),
            )
        else:
            table.add_row(row["client"], "[red]invalid: run validate[/red]", "", "", "")
    console.print(table)


@click.command("validate")
@click.argument("names", nargs=-1, metavar="[CLIENT]...")
@json_option
@pass_settings
def validate_command(settings: Settings, names: tuple[str, ...], as_json: bool) -> None:
    """Validate client contracts and inventories (all clients when none named).

    Every problem is listed with its file, line and field; exit 2 if any.
    """
    chosen = list(names) or list_client_names(settings.inventories)
    report: list[dict[str, Any]] = []
    problems = []
    for name in chosen:
        try:
            load_client(settings.inventories, name)
        except ContractInvalid as error:
            problems.extend(error.problems)
            report.append(
                {
                    "client": name,
                    "valid": False,
                    "problems": [
                        {
                            "file": str(p.file),
                            "line": p.line,
                            "field": p.field,
                            "message": p.message,
                        }
                        for p in error.problems
                    ],
                }
            )
            continue
        report.append({"client": name, "valid": True, "problems": []})
        if not as_json:
            console.print(f"[green]ok[/green] {name}")
    if as_json:
        emit_json(report)
    if problems:
        raise ContractInvalid(problems)


@click.command("schema")
@click.option("--markdown", is_flag=True, help="Print the contract reference in Markdown instead.")
def schema_command(markdown: bool) -> None:
    """Print the JSON Schema of client.yml (every field with a description and an example)."""
    if markdown:
        click.echo(contract_reference_markdown(), nl=False)
        return
    click.echo(json.dumps(contract_json_schema(), indent=2))


@click.command("policy")
@click.argument("name", metavar="CLIENT")
@json_option
@pass_settings
def policy_command(settings: Settings, name: str, as_json: bool) -> None:
    """Print a client's effective policy and where each value came from."""
    client = load_client(settings.inventories, name)
    if as_json:
        emit_json(policy_document(client.policy))
        return
    policy = client.policy
    table = Table(
        title=(
            f"{client.contract.display_name}: {client.contract.level_name}, "
            f"sector {policy.sector.value}"
        ),
    )
    # A setting's name is what a contract and the README refer to: never cut. The other
    # columns fold (a word split over two lines) rather than end in an ellipsis.
    table.add_column("setting", no_wrap=True)
    for header in ("value", "source", "meaning"):
        table.add_column(header, overflow="fold")
    document = policy_document(policy)
    for setting, value in policy.values.items():
        table.add_row(
            setting,
            describe_value(value.value, setting),
            value.source,
            document["settings"][setting]["description"],
        )
    console.print(table)
    freezes = Table("freeze", "when", "source", "reason")
    for item in document["freezes"]:
        freezes.add_row(item["name"], item["when"], item["source"], item["reason"])
    console.print(freezes)


@click.command("s3-policies")
@click.argument("name", metavar="CLIENT")
@pass_settings
def s3_policies_command(settings: Settings, name: str) -> None:
    """Print, as JSON by host, the IAM policy to attach to each host's own S3 key
    (the vault's webmg_s3_host_keys) when CLIENT's repositories are in an S3 bucket.
    """
    client = load_client(settings.inventories, name)
    repository = client.contract.backup.repository
    if not repository:
        raise BadInput(f"{client.name}: the contract names no backup repository")
    try:
        policies = host_key_policies(repository, backed_up_hosts(client))
    except ValueError as error:
        raise BadInput(f"{client.name}: {error}") from None
    emit_json(policies)


@click.command("note")
@click.argument("name", metavar="CLIENT")
@click.option("--text", required=True, help="The decision or observation to record.")
@pass_settings
def note_command(settings: Settings, name: str, text: str) -> None:
    """Record a note (a decision or observation) for a client in the ledger."""
    entry = record_note(settings, name, text)
    console.print(f"recorded note as ledger entry {entry.seq}")
