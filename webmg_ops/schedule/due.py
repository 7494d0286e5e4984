"""What is due for each client: calendar state plus actions whose cadence elapsed.

The last successful run of each action comes from the ledger's
``run-finished`` entries; an action that never succeeded is due. The client's
report is no run: its last one is the newest ``report-written`` entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from webmg_ops.config.calendar import CalendarState, calendar_state, is_due
from webmg_ops.config.clients import Client
from webmg_ops.config.durations import format_duration
from webmg_ops.config.policy import RECURRING_ACTIONS
from webmg_ops.config.zones import time_zone
from webmg_ops.ledger import LedgerReader
from webmg_ops.runs.records import REPORT_WRITTEN, RUN_FINISHED

#: Which recorded action satisfies each recurring action, and whether a dry
#: run counts: a drift check is a hardening run in check mode, and a real
#: hardening run verifies the baseline too.
SATISFIED_BY: dict[str, tuple[str, bool]] = {
    "update": ("update", False),
    "harden": ("harden", False),
    "drift": ("harden", True),
    "backup": ("backup", False),
    "drill": ("drill", False),
    # Written by ``report``, recorded as a report-written entry (see clients_due).
    "report": ("report", False),
}


#: Recurring actions that need a backup repository in the contract.
BACKUP_ACTIONS = frozenset({"backup", "drill"})


@dataclass(frozen=True)
class ActionDue:
    """One recurring action of one client."""

    action: str
    cadence: timedelta | None
    last_success: datetime | None
    due: bool


@dataclass(frozen=True)
class ClientDue:
    """The calendar state and recurring actions of one client at one instant."""

    client: Client
    state: CalendarState
    actions: tuple[ActionDue, ...]

    @property
    def due_actions(self) -> list[str]:
        """Return the names of the actions that are due."""
        return [item.action for item in self.actions if item.due]


def last_successes(finished_runs: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """Given ``run-finished`` records (``action``, ``outcome``, ``check``, ``at``), return
    the last success of each recurring action.
    """
    latest: dict[str, datetime] = {}
    for record in finished_runs:
        if record.get("outcome") != "succeeded":
            continue
        for recurring, (action, check_counts) in SATISFIED_BY.items():
            if record.get("action") != action:
                continue
            if record.get("check") and not check_counts:
                continue
            at: datetime = record["at"]
            if recurring not in latest or at > latest[recurring]:
                latest[recurring] = at
    return latest


def client_due(client: Client, at: datetime, successes: Mapping[str, datetime]) -> ClientDue:
    """Given a client, an aware instant and its last successes, return what is due.

    Backups and drills are due only for a client whose contract names a backup
    repository: the agency's own folder (its backup target) holds others' backups.
    """
    state = calendar_state(client.contract.windows, client.policy.freezes, at)
    backed_up = bool(client.contract.backup.repository)
    actions = tuple(
        ActionDue(
            action=action,
            cadence=client.policy.cadence(action),
            last_success=successes.get(action),
            due=is_due(successes.get(action), client.policy.cadence(action), at),
        )
        for action in RECURRING_ACTIONS
        if backed_up or action not in BACKUP_ACTIONS
    )
    return ClientDue(client=client, state=state, actions=actions)


#: Clients whose history one query reads: one query each cost more than their entries
#: over a fleet, and each name is a bound parameter (SQLite allows 32,766 of them).
CLIENTS_PER_QUERY = 500


def clients_due(ledger: LedgerReader, clients: Iterable[Client], at: datetime) -> list[ClientDue]:
    """Given the ledger, clients and an aware instant, return what is due for each client."""
    chosen = list(clients)
    history: dict[str, list[dict[str, Any]]] = {client.name: [] for client in chosen}
    for first in range(0, len(chosen), CLIENTS_PER_QUERY):
        names = [client.name for client in chosen[first : first + CLIENTS_PER_QUERY]]
        for entry in ledger.entries(clients=names, kinds=(RUN_FINISHED, REPORT_WRITTEN)):
            history[str(entry.client)].append(
                # A report-written entry reads as a succeeded "report": what due counts.
                {**entry.payload, "at": entry.at}
                if entry.kind == RUN_FINISHED
                else {"action": "report", "outcome": "succeeded", "at": entry.at}
            )
    return [client_due(client, at, last_successes(history[client.name])) for client in chosen]


def _local(instant: datetime | None, zone: ZoneInfo) -> str | None:
    return instant.astimezone(zone).isoformat() if instant else None


def due_document(item: ClientDue) -> dict[str, Any]:
    """Given a client's due state, return it as a JSON-ready document (client's time zone)."""
    windows = item.client.contract.windows
    zone = time_zone(windows[0].timezone)
    state = item.state
    return {
        "client": item.client.name,
        "level": item.client.contract.level_name,
        "timezone": windows[0].timezone,
        "at": _local(state.at, zone),
        "in_window": state.window is not None,
        "window": state.window.window.name if state.window else None,
        "in_freeze": state.freeze is not None,
        "freeze": (
            {"name": state.freeze.freeze.name, "reason": state.freeze.freeze.reason}
            if state.freeze
            else None
        ),
        "changes_allowed": state.changes_allowed,
        "next_window": (
            {
                "name": state.next_window.name if state.next_window else None,
                "always": bool(state.next_window and state.next_window.always),
                "start": _local(state.next_opening.start, zone),
                "end": _local(state.next_opening.end, zone),
            }
            if state.next_opening
            else None
        ),
        "due": item.due_actions,
        "actions": [
            {
                "action": action.action,
                "cadence": format_duration(action.cadence) if action.cadence else None,
                "last_success": _local(action.last_success, zone),
                "due": action.due,
            }
            for action in item.actions
        ],
    }
