"""Backlog commands: ``backlog CLIENT`` (same as ``backlog list CLIENT``), ``backlog start``,
``backlog done``, ``backlog deprioritise``, ``backlog reprioritise``."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from webmg_ops.ledger import resolve_actor
from webmg_ops.service import backlog_commands
from webmg_ops.service.backlog import Item
from webmg_ops.settings import Settings

from .common import by_option, console, emit_json, json_option, pass_settings


class _ListByDefault(click.Group):
    """A group whose first argument, when it names no subcommand, is the client of ``list``:
    ``backlog CLIENT`` reads as ``backlog list CLIENT``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The first word that is not an option decides (``backlog --json CLIENT`` too);
        # help stays the group's.
        first = next((arg for arg in args if not arg.startswith("-")), None)
        if first is not None and first not in self.commands:
            args = ["list", *args]
        return super().parse_args(ctx, args)


def _print(item: Item, as_json: bool, done: str) -> None:
    if as_json:
        emit_json(item.document())
        return
    console.print(f"{item.id} ({item.client}) {done}: {item.title}")


@click.group("backlog", cls=_ListByDefault)
def backlog_group() -> None:
    """The backlog: open changes, incident follow-ups and post-mortem actions, by priority,
    with caps on work in progress and open items (`backlog CLIENT` lists it)."""


@backlog_group.command("list")
@click.argument("client", metavar="CLIENT")
@json_option
@pass_settings
def list_command(settings: Settings, client: str, as_json: bool) -> None:
    """List CLIENT's backlog, most urgent first, with what each item waits on and whom."""
    items = backlog_commands.show_backlog(settings, client)
    if as_json:
        emit_json([item.document() for item in items])
        return
    table = Table(
        "id", "type", "priority", "title", "waits on", "for", "status", title=f"backlog of {client}"
    )
    for item in items:
        priority = item.severity or f"risk {item.risk or '?'}"
        status = (
            f"deprioritised ({item.deprioritised_by})"
            if item.deprioritised_by
            else ("in progress" if item.in_progress else "open")
        )
        table.add_row(
            item.id, item.type, priority, item.title, item.waits_on, item.waiting_for, status
        )
    console.print(table)


def _now() -> datetime:
    return datetime.now(UTC)


@backlog_group.command("start")
@click.argument("item_id", metavar="ITEM")
@by_option("Who starts the work")
@json_option
@pass_settings
def start_command(settings: Settings, item_id: str, by: str | None, as_json: bool) -> None:
    """Start work on ITEM (refused past the client's WIP cap)."""
    item = backlog_commands.start_item(settings, item_id, by=by or resolve_actor(), now=_now())
    _print(item, as_json, "started")


@backlog_group.command("done")
@click.argument("item_id", metavar="ITEM")
@by_option("Who finished it")
@click.option("--note", default="", help="What was done.")
@json_option
@pass_settings
def done_command(
    settings: Settings, item_id: str, by: str | None, note: str, as_json: bool
) -> None:
    """Mark a post-mortem action ITEM done (changes and incidents end by their own flow)."""
    item = backlog_commands.finish_item(
        settings, item_id, by=by or resolve_actor(), note=note, now=_now()
    )
    _print(item, as_json, "done")


@backlog_group.command("deprioritise")
@click.argument("item_id", metavar="ITEM")
@by_option("Who decides for the client (name and role)")
@click.option("--note", required=True, help="Why the client deprioritises it.")
@json_option
@pass_settings
def deprioritise_command(
    settings: Settings, item_id: str, by: str | None, note: str, as_json: bool
) -> None:
    """Record the client's decision to deprioritise ITEM (it leaves the caps)."""
    item = backlog_commands.deprioritise_item(
        settings, item_id, by=by or resolve_actor(), note=note, now=_now()
    )
    _print(item, as_json, f"deprioritised by the client ({item.deprioritised_by})")


@backlog_group.command("reprioritise")
@click.argument("item_id", metavar="ITEM")
@by_option("Who decides for the client (name and role)")
@click.option("--note", required=True, help="Why the client takes it back.")
@json_option
@pass_settings
def reprioritise_command(
    settings: Settings, item_id: str, by: str | None, note: str, as_json: bool
) -> None:
    """Record the client's decision to take a deprioritised ITEM back (refused past the
    open-items cap)."""
    item = backlog_commands.reprioritise_item(
        settings, item_id, by=by or resolve_actor(), note=note, now=_now()
    )
    _print(item, as_json, "taken back into the backlog by the client")
