"""Decision commands: ``decision record``, ``decision list``."""

from __future__ import annotations

import click
from rich.table import Table

from webmg_ops.ledger import resolve_actor
from webmg_ops.service.decisions import PARTIES
from webmg_ops.service.items import list_decisions, record_decision
from webmg_ops.settings import Settings

from .common import by_option, console, emit_json, json_option, pass_settings


@click.group("decision")
def decision_group() -> None:
    """Decisions: the client's or the agency's recorded arbitration."""


@decision_group.command("record")
@click.argument("client", metavar="CLIENT")
@click.option("--title", required=True, help="What was decided, in one line.")
@by_option("Who decided (name and role)")
@click.option("--party", type=click.Choice(PARTIES), required=True, help="Whose decision it is.")
@click.option("--note", required=True, help="Why, and any conditions.")
@json_option
@pass_settings
def record_command(
    settings: Settings,
    client: str,
    title: str,
    by: str | None,
    party: str,
    note: str,
    as_json: bool,
) -> None:
    """Record a decision for CLIENT (priority arbitration, acceptance, exception)."""
    decision = record_decision(
        settings, client, title=title, by=by or resolve_actor(), party=party, note=note
    )
    if as_json:
        emit_json(decision.document())
        return
    console.print(f"{decision.id} recorded: {decision.title} ({decision.party}, {decision.by})")


@decision_group.command("list")
@click.argument("client", metavar="[CLIENT]", required=False)
@json_option
@pass_settings
def list_command(settings: Settings, client: str | None, as_json: bool) -> None:
    """List the decisions of CLIENT (every client when none is named), oldest first."""
    found = list_decisions(settings, client)
    if as_json:
        emit_json([decision.document() for decision in found])
        return
    table = Table("id", "client", "at", "party", "by", "title", "about", title="decisions")
    for item in found:
        table.add_row(
            item.id,
            item.client,
            f"{item.at:%Y-%m-%d %H:%M}",
            item.party,
            item.by,
            item.title,
            item.subject or "-",
        )
    console.print(table)
