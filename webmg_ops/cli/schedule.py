"""Schedule commands: ``due`` and ``drills-due``, what each client's cadences ask for.

Both read every client at once, so this module imports only what they need: the
run commands (and the engine behind them) are imported when ``drills-due --run``
drills.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from webmg_ops.config.clients import (
    Client,
    ContractInvalid,
    list_client_names,
    load_client,
    load_client_contract,
)
from webmg_ops.config.contract_cache import ContractCache, contract_cache_file
from webmg_ops.config.instants import parse_instant
from webmg_ops.config.policy import describe_value
from webmg_ops.errors import BadInput
from webmg_ops.ledger import open_ledger
from webmg_ops.schedule.due import clients_due, due_document
from webmg_ops.settings import Settings
from webmg_ops.yamlsource import SourceProblem

from .common import console, emit_json, end_with_problems, json_option, pass_settings
from .lazy import collector_paused


def _load_all(
    settings: Settings,
    names: tuple[str, ...],
    load: Callable[[Path, str], Client] = load_client,
) -> tuple[list[Client], list[SourceProblem]]:
    """Given the settings, client names (all clients when none named) and how to load
    one (the whole folder by default), return the valid clients and every problem of the
    invalid ones.

    One broken contract must not stop the others' schedule (a CI drill run would
    otherwise drill nobody): the caller works on the valid clients, then reports the
    problems through :func:`_end_with_problems`. Raise BadInput for an unsafe or unknown
    name, or a missing inventories folder.
    """
    chosen = list(names) or list_client_names(settings.inventories)
    clients: list[Client] = []
    problems: list[SourceProblem] = []
    for name in chosen:
        try:
            clients.append(load(settings.inventories, name))
        except ContractInvalid as error:
            problems.extend(error.problems)
    return clients, problems


def _parse_instant(text: str | None) -> datetime:
    return datetime.now(UTC) if text is None else parse_instant("--at", text)


def _human_span(start: str, end: str, timezone: str) -> str:
    opens, closes = datetime.fromisoformat(start), datetime.fromisoformat(end)
    same_day = opens.date() == closes.date()
    closing = f"{closes:%H:%M}" if same_day else f"{closes:%a %d %b %H:%M}"
    return f"{opens:%a %d %b %Y %H:%M}-{closing} ({timezone})"


def _due_documents(
    settings: Settings, names: tuple[str, ...], at: datetime
) -> tuple[list[dict[str, Any]], list[SourceProblem]]:
    """Given the settings, client names (all clients when none named) and an instant,
    return what is due for each valid client, as documents, and the problems of the
    invalid ones.

    The clients are freed when this returns: the output that follows works with plain
    documents. Raise BadInput as :func:`_load_all`.
    """
    with collector_paused(freeze=True):
        # Nothing here reaches a host: reading every inventory through Ansible's parser
        # cost about 17 ms a client, 17 s for a fleet of 1,000.
        # Each contract's data comes from the cache when its file is unchanged.
        cache = ContractCache.open(contract_cache_file(settings.var_dir))
        clients, problems = _load_all(
            settings, names, functools.partial(load_client_contract, cache=cache)
        )
        cache.save()
        with open_ledger(settings.ledger_url, create=False, missing_ok=True) as ledger:
            dues = clients_due(ledger, clients, at)
        return [due_document(item) for item in dues], problems


@click.command("due")
@click.argument("names", nargs=-1, metavar="[CLIENT]...")
@click.option(
    "--at",
    "at_text",
    metavar="ISO-TIME",
    help="Evaluate at this instant, with its offset (default: now).",
)
@json_option
@pass_settings
def due_command(
    settings: Settings, names: tuple[str, ...], at_text: str | None, as_json: bool
) -> int:
    """Show each client's next window, window/freeze state and the actions due.

    A client whose contract is invalid is left out and the others are shown; the
    problems are then reported with their file and line, and the exit status is 2.
    Only contracts are read, as tick reads them: inventories are checked by validate
    and by every run.
    """
    documents, problems = _due_documents(settings, names, _parse_instant(at_text))
    if as_json:
        emit_json(documents)
        return end_with_problems(problems)
    table = Table("client", "now", "next window (client time)", "due")
    for document in documents:
        if document["in_freeze"]:
            now = f"[yellow]frozen: {document['freeze']['name']}[/yellow]"
        elif document["in_window"]:
            now = f"[green]in window {document['window']}[/green]"
        else:
            now = "outside windows"
        upcoming = document["next_window"]
        if upcoming is None:
            when = "none within a year"
        elif upcoming["always"]:
            when = "always open (lab-only client)"
        else:
            when = _human_span(upcoming["start"], upcoming["end"], document["timezone"])
        table.add_row(document["client"], now, when, ", ".join(document["due"]) or "-")
    console.print(table)
    return end_with_problems(problems)


@click.command("drills-due")
@click.option(
    "--at",
    "at_text",
    metavar="ISO-TIME",
    help="Evaluate at this instant, with its offset (default: now).",
)
@click.option("--run", "run_them", is_flag=True, help="Run every drill that is due, in turn.")
@json_option
@pass_settings
def drills_due_command(
    settings: Settings, at_text: str | None, run_them: bool, as_json: bool
) -> int:
    """List (or run, with --run) the restore drills due by each client's level cadence.

    With --run, exits 1 if any drill failed; the others still run. A client whose
    files are invalid is left out and the others listed (or drilled); the problems are
    then reported with their file and line, and the exit status is 2.
    """
    at = _parse_instant(at_text)
    if run_them and at_text is not None:
        raise BadInput("--at and --run do not go together: drills run now")
    rows: list[dict[str, Any]] = []
    with collector_paused():
        clients, problems = _load_all(settings, ())
        contracted = [client for client in clients if not client.contract.is_prospect]
        with open_ledger(settings.ledger_url, create=False, missing_ok=True) as ledger:
            dues = clients_due(ledger, contracted, at)
        for item in dues:
            drill = next((action for action in item.actions if action.action == "drill"), None)
            if drill is None:
                continue  # nothing to drill: the contract names no backup repository
            rows.append(
                {
                    "client": item.client.name,
                    "level": item.client.contract.level_name,
                    "cadence": describe_value(drill.cadence),
                    "last_drill": drill.last_success.isoformat() if drill.last_success else None,
                    "due": drill.due,
                }
            )
    if run_them:
        from .runs import run_due_drills  # the engine: only when drills run

        worst = run_due_drills(settings, [row["client"] for row in rows if row["due"]], as_json)
        return end_with_problems(problems, worst)
    if as_json:
        emit_json(rows)
        return end_with_problems(problems)
    table = Table("client", "level", "drill every", "last successful drill", "due")
    for row in rows:
        table.add_row(
            row["client"],
            row["level"],
            row["cadence"],
            row["last_drill"] or "never",
            "[red]due[/red]" if row["due"] else "no",
        )
    console.print(table)
    return end_with_problems(problems)
