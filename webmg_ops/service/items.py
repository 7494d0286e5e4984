"""The service's items in the ledger: decisions, changes and risks, found by id, read per
client, and moved on by one recorded step.

Each step finds the item's creating entry by the seq in its id (so the client
comes from the ledger, not from the caller), loads the client's contract, and
records through :func:`~webmg_ops.service.records.record_derived`: the pure
modules decide from the client's entries what to append, or refuse with
nothing written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from webmg_ops.config.clients import Client, load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.service import decisions
from webmg_ops.service.ids import ITEM_NAMES, ItemId
from webmg_ops.service.records import record_derived
from webmg_ops.settings import Settings

#: Given a client's entries and its loaded contract, return what to append.
Step = Callable[[Sequence[Entry], Client], Sequence[NewEntry]]


def locate(settings: Settings, item: ItemId, kinds: Collection[str]) -> Entry:
    """Given an item's id and the kinds of entry that create such items, return the entry
    its seq names. Raise BadInput if there is none of those kinds (nothing is created)."""
    with open_ledger(settings.ledger_url, create=False) as ledger:
        entry = ledger.get(item.seq)
    if entry is None or entry.kind not in kinds or entry.client is None:
        raise BadInput(f"unknown {ITEM_NAMES[item.prefix]} {item}")
    return entry


def read_entries(settings: Settings, client: str | None, kinds: Sequence[str]) -> list[Entry]:
    """Given a client (None: every client) and kinds, return those entries, oldest first.

    Raise BadInput for an unknown client (nothing is created).
    """
    if client is not None:
        load_client(settings.inventories, client)
    with open_ledger(settings.ledger_url, create=False) as ledger:
        return list(ledger.entries(client=client, kinds=kinds))


def _step(settings: Settings, client_name: str, kinds: Sequence[str], step: Step) -> list[Entry]:
    client = load_client(settings.inventories, client_name)
    return record_derived(settings, client.name, kinds, lambda history: step(history, client))


def _by_client(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.client is not None:
            grouped.setdefault(entry.client, []).append(entry)
    return grouped


# --- decisions -----------------------------------------------------------------


def record_decision(
    settings: Settings, client: str, *, title: str, by: str, party: str, note: str
) -> decisions.Decision:
    """Given a client and a decision, record it and return it.

    Raise BadInput for an unknown client, a blank field or an unknown party.
    """
    (entry,) = _step(
        settings,
        client,
        (),
        lambda _history, loaded: [
            decisions.draft_decision(loaded.name, title=title, by=by, party=party, note=note)
        ],
    )
    return decisions.decision_of(entry)


def list_decisions(settings: Settings, client: str | None) -> list[decisions.Decision]:
    """Given a client (None: every client), return its decisions, oldest first."""
    return decisions.decisions_of(read_entries(settings, client, (decisions.DECISION_RECORDED,)))
