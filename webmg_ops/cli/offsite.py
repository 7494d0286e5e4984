"""``offsite pending`` and ``offsite publish``: offsite copies that failed, and their retry."""

from __future__ import annotations

import click
from rich.table import Table

from webmg_ops.ansible.vault import Vault, vault_password_file
from webmg_ops.engine.offsite_step import pending_source, pending_vault
from webmg_ops.offsite.pending import read_pending
from webmg_ops.offsite.republish import publish_pending_command
from webmg_ops.service.records import ledger_recorder
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings, vault_option


@click.group("offsite")
def offsite_group() -> None:
    """Offsite copies on S3 that wait to be published."""


@offsite_group.command("pending")
@json_option
@pass_settings
def pending_command(settings: Settings, as_json: bool) -> None:
    """List the offsite uploads and copies that failed and wait for a retry."""
    items = read_pending(settings)
    if as_json:
        emit_json([item.to_json() for item in items])
        return
    table = Table("id", "client", "kind", "run", "attempts", "reason", title="offsite pending")
    for item in items:
        table.add_row(
            item.id, item.client, item.kind, item.run_id, str(item.attempts), item.reason[:80]
        )
    console.print(table)


@offsite_group.command("publish")
@vault_option
@pass_settings
def publish_command(settings: Settings, vault_file: str | None) -> int:
    """Publish every pending offsite item again; exit 1 if some are still pending."""
    vault = Vault(vault_password_file(vault_file))
    return publish_pending_command(
        settings,
        record=ledger_recorder(settings),
        vault_for=pending_vault(settings, vault),
        source_for=pending_source(settings, vault),
        echo=lambda line: console.print(line),
    )
