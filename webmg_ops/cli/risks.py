"""Risk register commands: ``risk add | accept | close | list``."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from webmg_ops.ledger import resolve_actor
from webmg_ops.service import items
from webmg_ops.service.risks import RATINGS, Risk
from webmg_ops.settings import Settings

from .common import by_option, console, emit_json, json_option, pass_settings


def _print(risk: Risk, as_json: bool, done: str) -> None:
    if as_json:
        emit_json(risk.document())
        return
    console.print(f"{risk.id} ({risk.client}) {done}: {risk.title} [{risk.state.value}]")


@click.group("risk")
def risk_group() -> None:
    """The risk register: risks added by hand and the residual risks runs report."""


@risk_group.command("add")
@click.argument("client", metavar="CLIENT")
@click.option("--title", required=True, help="The risk, in one line.")
@click.option("--impact", type=click.Choice(RATINGS), required=True, help="Impact if it happens.")
@click.option("--likelihood", type=click.Choice(RATINGS), required=True, help="How likely it is.")
@click.option("--host", metavar="HOST", help="The inventory host it concerns (default: none).")
@click.option("--control", metavar="ID", help="The control it concerns (e.g. SSH-01).")
@json_option
@pass_settings
def add_command(
    settings: Settings,
    client: str,
    title: str,
    impact: str,
    likelihood: str,
    host: str | None,
    control: str | None,
    as_json: bool,
) -> None:
    """Add a risk to CLIENT's register; it gets the id RSK-<seq>."""
    risk = items.add_risk(
        settings,
        client,
        title=title,
        impact=impact,
        likelihood=likelihood,
        host=host,
        control=control,
        now=datetime.now(UTC),
    )
    _print(risk, as_json, "added")


@risk_group.command("accept")
@click.argument("risk_id", metavar="ID")
@by_option("Who accepts the risk for the client (name and role)")
@click.option("--until", required=True, metavar="DATE", help="Last day of the acceptance.")
@click.option("--note", help="Why the client accepts it.")
@json_option
@pass_settings
def accept_command(
    settings: Settings,
    risk_id: str,
    by: str | None,
    until: str,
    note: str | None,
    as_json: bool,
) -> None:
    """Record the client's decision to accept risk ID until DATE."""
    risk = items.accept_risk(
        settings, risk_id, by=by or resolve_actor(), until=until, note=note, now=datetime.now(UTC)
    )
    _print(risk, as_json, f"accepted until {risk.accepted_until} by {risk.acceptance_decision}")


@risk_group.command("close")
@click.argument("risk_id", metavar="ID")
@click.option("--note", required=True, help="Why the risk is closed.")
@json_option
@pass_settings
def close_command(settings: Settings, risk_id: str, note: str, as_json: bool) -> None:
    """Close risk ID (a risk from runs also closes by itself when no longer reported)."""
    risk = items.close_risk(settings, risk_id, note=note, now=datetime.now(UTC))
    _print(risk, as_json, "closed")


@risk_group.command("list")
@click.argument("client", metavar="[CLIENT]", required=False)
@click.option("--open", "only_open", is_flag=True, help="Only risks still in force.")
@json_option
@pass_settings
def list_command(settings: Settings, client: str | None, only_open: bool, as_json: bool) -> None:
    """Show the register of CLIENT (every client when none is named)."""
    found = [
        risk
        for risk in items.list_risks(settings, client, datetime.now(UTC))
        if risk.is_open or not only_open
    ]
    if as_json:
        emit_json([risk.document() for risk in found])
        return
    table = Table("id", "client", "state", "host", "control", "risk", "source", title="risks")
    for risk in found:
        state = risk.state.value
        if risk.accepted_until is not None and risk.state.value == "accepted":
            state = f"accepted until {risk.accepted_until}"
        if risk.acceptance_expired:
            state = f"open (acceptance ended {risk.accepted_until})"
        table.add_row(
            risk.id,
            risk.client,
            state,
            risk.host or "-",
            risk.control,
            risk.title,
            risk.source,
        )
    console.print(table)
