"""The backlog commands' flows: find the item's client, let :mod:`backlog` decide, record.

An item's id names the entry that created it (a change's request, an incident's
opening, a post-mortem for its actions), so the client comes from the ledger.
Each step reads the client's entries of :data:`~webmg_ops.service.backlog.READ_KINDS`
and appends what the pure decision returns through
:func:`~webmg_ops.service.records.record_derived`, in one transaction (nothing is
written when the decision refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from webmg_ops.config.clients import Client, load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.service import backlog
from webmg_ops.service.changes import CHANGE_REQUESTED
from webmg_ops.service.incidents import OPENED, POSTMORTEM
from webmg_ops.service.records import record_derived
from webmg_ops.settings import Settings

#: The kind of entry that creates each prefix's items.
_CREATED_BY: dict[str, str] = {"CHG": CHANGE_REQUESTED, "INC": OPENED, "ACT": POSTMORTEM}

#: Given the client's entries and its loaded contract, return what to append.
BacklogStep = Callable[[Sequence[Entry], Client], NewEntry | Sequence[NewEntry]]


def client_of_item(settings: Settings, item_id: str) -> str:
    """Given a backlog item's id, return its client, read from the entry that created it.

    Raise BadInput if the id is malformed or names no such entry.
    """
    prefix, seq = backlog.parse_item_id(item_id)
    with open_ledger(settings.ledger_url, create=False) as ledger:
        entry = ledger.get(seq)
    if entry is None or entry.kind != _CREATED_BY[prefix] or entry.client is None:
        raise BadInput(f"unknown backlog item {item_id.strip().upper()}")
    return entry.client


def show_backlog(settings: Settings, client_name: str) -> list[backlog.Item]:
    """Given a client, return its backlog, most urgent first. Raise BadInput for an
    unknown client."""
    client = load_client(settings.inventories, client_name)
    with open_ledger(settings.ledger_url, create=False) as ledger:
        entries = list(ledger.entries(client=client.name, kinds=backlog.READ_KINDS))
    return backlog.backlog_of(entries, client.policy)


def step_item(settings: Settings, item_id: str, step: BacklogStep) -> backlog.Item:
    """Given an item's id and a step, record what the step decides and return the item as
    it stands after it.

    Raise BadInput for a malformed or unknown id, or what the step raises (BadInput,
    Refused): nothing is then written.
    """
    client = load_client(settings.inventories, client_of_item(settings, item_id))
    seen: list[Entry] = []

    def derive(history: Sequence[Entry]) -> list[NewEntry]:
        seen.extend(history)
        drafted = step(history, client)
        return [drafted] if isinstance(drafted, NewEntry) else list(drafted)

    made = record_derived(settings, client.name, backlog.READ_KINDS, derive)
    items = backlog.backlog_of([*seen, *made], client.policy)
    wanted = item_id.strip().upper()
    found = [item for item in items if item.id == wanted]
    if found:
        return found[0]
    # An action marked done has left the backlog: show it as it was.
    return backlog.find_item(backlog.backlog_of(seen, client.policy), wanted)


def start_item(settings: Settings, item_id: str, *, by: str, now: datetime) -> backlog.Item:
    """Given an item, who starts it and when, record that it is in progress; return it.

    Raise Refused past the WIP cap; BadInput as :func:`backlog.draft_start` does.
    """
    return step_item(
        settings,
        item_id,
        lambda history, client: backlog.draft_start(
            history, client.policy, item_id, by=by, now=now
        ),
    )


def finish_item(
    settings: Settings, item_id: str, *, by: str, note: str, now: datetime
) -> backlog.Item:
    """Given a post-mortem action, who finished it, a note and when, record it done; return
    it as it was. Raise BadInput as :func:`backlog.draft_done` does."""
    return step_item(
        settings,
        item_id,
        lambda history, client: backlog.draft_done(
            history, client.policy, item_id, by=by, note=note, now=now
        ),
    )


def deprioritise_item(
    settings: Settings, item_id: str, *, by: str, note: str, now: datetime
) -> backlog.Item:
    """Given an item, who decides for the client, why and when, record the client's
    decision with the deprioritisation; return the item.

    Raise BadInput as :func:`backlog.draft_deprioritise` does.
    """
    return step_item(
        settings,
        item_id,
        lambda history, client: backlog.draft_deprioritise(
            history, client.policy, item_id, by=by, note=note, now=now
        ),
    )


def reprioritise_item(
    settings: Settings, item_id: str, *, by: str, note: str, now: datetime
) -> backlog.Item:
    """Given a deprioritised item, who decides for the client, why and when, record the
    client's decision taking it back into the backlog; return the item.

    Raise BadInput or Refused as :func:`backlog.draft_reprioritise` does.
    """
    return step_item(
        settings,
        item_id,
        lambda history, client: backlog.draft_reprioritise(
            history, client.policy, item_id, by=by, note=note, now=now
        ),
    )
