"""Change commands: ``change request | scope | accept-out-of-scope | estimate | schedule |
approve | accept | list | show``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from webmg_ops.ledger import resolve_actor
from webmg_ops.service import items
from webmg_ops.service.changes import RISK_LEVELS, Change
from webmg_ops.settings import Settings

from .common import by_option, console, emit_json, json_option, pass_settings

_DEPLOYS_HELP = (
    "The application version the change deploys, a package of the client's repository "
    "(repeat for several packages)."
)


def _deploys_option(function: Any) -> Any:
    return click.option(
        "--deploys", "deploys", multiple=True, metavar="PACKAGE=VERSION", help=_DEPLOYS_HELP
    )(function)


def _print(change: Change, as_json: bool, done: str) -> None:
    if as_json:
        emit_json(change.document())
        return
    console.print(f"{change.id} ({change.client}) {done}: {change.title} [{change.state.value}]")
    if change.deploys:
        console.print(
            "deploys: " + ", ".join(f"{name} {version}" for name, version in change.deploys)
        )
    if change.blocked_out_of_scope:
        console.print(
            f"[yellow]out of scope:[/yellow] {', '.join(change.out_of_scope)}; the client must "
            f"accept it before it goes on: webmg-ops change accept-out-of-scope {change.id} "
            "--by WHO --note TEXT"
        )


@click.group("change")
def change_group() -> None:
    """Changes: request, scope, estimate, schedule, approve, deploy, client acceptance."""


@change_group.command("request")
@click.argument("client", metavar="CLIENT")
@click.option("--title", required=True, help="What is asked, in one line.")
@click.option("--description", required=True, help="What the change is for and what it does.")
@click.option(
    "--requested-by",
    metavar="WHO",
    default=None,
    help="Who asks for it (default: the recorded operator).",
)
@_deploys_option
@json_option
@pass_settings
def request_command(
    settings: Settings,
    client: str,
    title: str,
    description: str,
    requested_by: str | None,
    deploys: tuple[str, ...],
    as_json: bool,
) -> None:
    """Record a change requested for CLIENT; it gets the id CHG-<seq>."""
    change = items.request_change(
        settings,
        client,
        title=title,
        description=description,
        requested_by=requested_by or resolve_actor(),
        deploys=deploys,
    )
    _print(change, as_json, "requested")


@change_group.command("scope")
@click.argument("change_id", metavar="ID")
@click.option(
    "--in",
    "included",
    multiple=True,
    metavar="TEXT",
    help="What the change touches (repeat); checked against the contract's excluded items.",
)
@click.option(
    "--out", "excluded", multiple=True, metavar="TEXT", help="What it leaves alone (repeat)."
)
@_deploys_option
@json_option
@pass_settings
def scope_command(
    settings: Settings,
    change_id: str,
    included: tuple[str, ...],
    excluded: tuple[str, ...],
    deploys: tuple[str, ...],
    as_json: bool,
) -> None:
    """Record what change ID touches (and the version it deploys); one touching what the
    contract excludes is flagged out of scope and waits for the client's decision."""
    change = items.scope_change(
        settings, change_id, included=included, excluded=excluded, deploys=deploys
    )
    _print(change, as_json, "scoped")


@change_group.command("accept-out-of-scope")
@click.argument("change_id", metavar="ID")
@by_option("Who accepts for the client (name and role)")
@click.option("--note", required=True, help="Why the client accepts it, and on what terms.")
@json_option
@pass_settings
def accept_out_of_scope_command(
    settings: Settings, change_id: str, by: str | None, note: str, as_json: bool
) -> None:
    """Record the client's decision to go on with change ID although it is out of scope."""
    change = items.accept_out_of_scope(settings, change_id, by=by or resolve_actor(), note=note)
    _print(change, as_json, f"accepted out of scope by {change.out_of_scope_decision}")


@change_group.command("estimate")
@click.argument("change_id", metavar="ID")
@click.option("--hours", type=float, required=True, help="Estimated work, in hours.")
@click.option("--risk", type=click.Choice(RISK_LEVELS), required=True, help="Risk of the change.")
@click.option("--rollback", metavar="TEXT", help="How the change is rolled back.")
@json_option
@pass_settings
def estimate_command(
    settings: Settings,
    change_id: str,
    hours: float,
    risk: str,
    rollback: str | None,
    as_json: bool,
) -> None:
    """Record the estimate of change ID; past the level's cap, split the change (exit 3)."""
    change = items.estimate_change(settings, change_id, hours=hours, risk=risk, rollback=rollback)
    _print(change, as_json, f"estimated at {hours:g} h, {risk} risk")


@change_group.command("schedule")
@click.argument("change_id", metavar="ID")
@click.option("--window", metavar="NAME", help="The next opening of this window, out of freezes.")
@click.option(
    "--at",
    metavar="TIME",
    help="ISO 8601 time with its offset (e.g. 2026-12-01T23:30+01:00).",
)
@json_option
@pass_settings
def schedule_command(
    settings: Settings, change_id: str, window: str | None, at: str | None, as_json: bool
) -> None:
    """Schedule change ID inside a maintenance window and outside every freeze."""
    change = items.schedule_change(settings, change_id, window=window, at=at, now=datetime.now(UTC))
    when = change.scheduled_at.isoformat() if change.scheduled_at else "-"
    _print(change, as_json, f"scheduled at {when} ({change.window})")


@change_group.command("approve")
@click.argument("change_id", metavar="ID")
@by_option("Who approves (name and role)")
@click.option("--note", default="", help="Conditions of the approval.")
@json_option
@pass_settings
def approve_command(
    settings: Settings, change_id: str, by: str | None, note: str, as_json: bool
) -> None:
    """Record the approval that the deploy of change ID consumes."""
    change = items.approve_change(settings, change_id, by=by or resolve_actor(), note=note)
    _print(change, as_json, f"approved by {change.approved_by}")


@change_group.command("accept")
@click.argument("change_id", metavar="ID")
@by_option("Who validates for the client (name and role)")
@click.option("--rejected", is_flag=True, help="The client's validation failed.")
@click.option("--note", help="What was validated; required with --rejected.")
@json_option
@pass_settings
def accept_command(
    settings: Settings,
    change_id: str,
    by: str | None,
    rejected: bool,
    note: str | None,
    as_json: bool,
) -> None:
    """Record the client's functional validation of deployed change ID."""
    change = items.accept_change(
        settings, change_id, by=by or resolve_actor(), rejected=rejected, note=note
    )
    _print(change, as_json, change.state.value)


@change_group.command("list")
@click.argument("client", metavar="[CLIENT]", required=False)
@json_option
@pass_settings
def list_command(settings: Settings, client: str | None, as_json: bool) -> None:
    """List the changes of CLIENT (every client when none is named)."""
    found = items.list_changes(settings, client)
    if as_json:
        emit_json([change.document() for change in found])
        return
    table = Table(
        "id", "client", "state", "title", "hours", "scheduled", "waits on", title="changes"
    )
    for change in found:
        table.add_row(
            change.id,
            change.client,
            change.state.value,
            change.title,
            f"{change.hours:g}" if change.hours is not None else "-",
            f"{change.scheduled_at:%Y-%m-%d %H:%M %Z}" if change.scheduled_at else "-",
            "client (out of scope)" if change.blocked_out_of_scope else "-",
        )
    console.print(table)


@change_group.command("show")
@click.argument("change_id", metavar="ID")
@json_option
@pass_settings
def show_command(settings: Settings, change_id: str, as_json: bool) -> None:
    """Show change ID and each recorded step."""
    change = items.show_change(settings, change_id)
    if as_json:
        emit_json(change.document())
        return
    _print(change, False, "is")
    for seq, kind, at, actor in change.history:
        console.print(f"  {seq:>6}  {at}  {kind}  ({actor})")
