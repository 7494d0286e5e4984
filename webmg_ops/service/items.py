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
from datetime import date, datetime

from webmg_ops.config.clients import Client, load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.runs.records import RUN_FINISHED
from webmg_ops.service import backlog, changes, decisions, risks
from webmg_ops.service.ids import (
    CHANGE_PREFIX,
    ITEM_NAMES,
    RISK_PREFIX,
    ItemId,
    format_id,
    parse_id,
)
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


# --- changes --------------------------------------------------------------------


def request_change(
    settings: Settings,
    client: str,
    *,
    title: str,
    description: str,
    requested_by: str,
    deploys: Sequence[str] = (),
) -> changes.Change:
    """Given a client, a title, a description, who asks and what it deploys
    (``PACKAGE=VERSION`` items, maybe none), record the request and return the change.

    Raise BadInput for an unknown client, blank text or a bad ``--deploys`` item;
    Refused when the client's backlog already holds as many open items as its
    open-items cap (nothing written).
    """

    def draft(history: Sequence[Entry], loaded: Client) -> list[NewEntry]:
        drafted = changes.draft_request(
            loaded.name,
            title=title,
            description=description,
            requested_by=requested_by,
            deploys=deploys,
        )
        backlog.check_room_for(history, loaded.policy, loaded.name)
        return [drafted]

    (entry,) = _step(settings, client, backlog.READ_KINDS, draft)
    return changes.find_change([entry], format_id(CHANGE_PREFIX, entry.seq))


#: Given a change's id, the client's entries and its contract, return what to append.
ChangeStep = Callable[[str, Sequence[Entry], Client], NewEntry | Sequence[NewEntry]]


def step_change(settings: Settings, change_id: str, step: ChangeStep) -> changes.Change:
    """Given a change's id and a step, record what the step decides and return the change
    as it is now.

    Raise BadInput for a malformed or unknown id, or what the step raises
    (BadInput, Refused): nothing is then written.
    """
    item = parse_id(change_id, CHANGE_PREFIX)
    created = locate(settings, item, (changes.CHANGE_REQUESTED,))
    name = str(item)
    seen: list[Entry] = []

    def decide(history: Sequence[Entry], client: Client) -> Sequence[NewEntry]:
        seen.extend(history)
        drafted = step(name, history, client)
        return [drafted] if isinstance(drafted, NewEntry) else list(drafted)

    appended = _step(settings, created.client or "", changes.CHANGE_KINDS, decide)
    return changes.find_change([*seen, *appended], name)


def show_change(settings: Settings, change_id: str) -> changes.Change:
    """Given a change's id, return the change. Raise BadInput for a malformed or unknown id."""
    item = parse_id(change_id, CHANGE_PREFIX)
    created = locate(settings, item, (changes.CHANGE_REQUESTED,))
    return changes.find_change(
        read_entries(settings, created.client, changes.CHANGE_KINDS), str(item)
    )


def list_changes(settings: Settings, client: str | None) -> list[changes.Change]:
    """Given a client (None: every client), return its changes in the order requested."""
    found: list[changes.Change] = []
    for entries in _by_client(read_entries(settings, client, changes.CHANGE_KINDS)).values():
        found.extend(changes.changes_of(entries).values())
    return sorted(found, key=lambda change: parse_id(change.id, CHANGE_PREFIX).seq)


def scope_change(
    settings: Settings,
    change_id: str,
    *,
    included: Sequence[str],
    excluded: Sequence[str],
    deploys: Sequence[str] = (),
) -> changes.Change:
    """Given a change, what it touches, what it leaves out and what it deploys, record its
    scope, flagged with the contract's excluded items it touches; return the change."""
    return step_change(
        settings,
        change_id,
        lambda name, history, client: changes.draft_scope(
            history,
            name,
            included=included,
            excluded=excluded,
            contract_scope=client.contract.scope,
            deploys=deploys,
        ),
    )


def accept_out_of_scope(
    settings: Settings, change_id: str, *, by: str, note: str
) -> changes.Change:
    """Given a change flagged out of scope, who accepts it for the client and why, record
    the client's decision with the acceptance; return the change."""
    return step_change(
        settings,
        change_id,
        lambda name, history, _client: changes.draft_out_of_scope_acceptance(
            history, name, by=by, note=note
        ),
    )


def estimate_change(
    settings: Settings, change_id: str, *, hours: float, risk: str, rollback: str | None
) -> changes.Change:
    """Given a change, its estimate, risk and rollback, record the estimate (capped by the
    client's policy); return the change."""
    return step_change(
        settings,
        change_id,
        lambda name, history, client: changes.draft_estimate(
            history,
            name,
            hours=hours,
            risk=risk,
            rollback=rollback,
            cap=client.policy.get(changes.MAX_ESTIMATE),
        ),
    )


def schedule_change(
    settings: Settings, change_id: str, *, window: str | None, at: str | None, now: datetime
) -> changes.Change:
    """Given a change, a window's name or a time, and now, record when it is deployed
    (inside a window, outside freezes); return the change."""
    return step_change(
        settings,
        change_id,
        lambda name, history, client: changes.draft_schedule(
            history,
            name,
            window_name=window,
            at=at,
            windows=client.contract.windows,
            freezes=client.policy.freezes,
            now=now,
        ),
    )


def approve_change(settings: Settings, change_id: str, *, by: str, note: str) -> changes.Change:
    """Given a scheduled change, who approves it and a note, record the approval its deploy
    consumes; return the change."""
    return step_change(
        settings,
        change_id,
        lambda name, history, _client: changes.draft_approval(history, name, by=by, note=note),
    )


def accept_change(
    settings: Settings, change_id: str, *, by: str, rejected: bool, note: str | None
) -> changes.Change:
    """Given a deployed change, who validates it for the client, the verdict and a note,
    record the client's acceptance or rejection; return the change."""
    return step_change(
        settings,
        change_id,
        lambda name, history, _client: changes.draft_acceptance(
            history, name, by=by, rejected=rejected, note=note
        ),
    )


# --- risks ----------------------------------------------------------------------


def client_today(client: Client, now: datetime) -> date:
    """Given a client and now, return today's date in the client's time zone."""
    return now.astimezone(changes.client_zone(client.contract.windows)).date()


def add_risk(
    settings: Settings,
    client: str,
    *,
    title: str,
    impact: str,
    likelihood: str,
    host: str | None,
    control: str | None,
    now: datetime,
) -> risks.Risk:
    """Given a client and a risk's title, impact, likelihood, host and control, add it to
    the register and return it.

    Raise BadInput for an unknown client or host, bad text or rating, or a (host,
    control) pair already open.
    """
    found: list[Entry] = []
    today: list[date] = []

    def draft(history: Sequence[Entry], loaded: Client) -> list[NewEntry]:
        names = sorted(item.name for item in loaded.hosts)
        if host is not None and host not in names:
            raise BadInput(f"{loaded.name} has no host {host!r} (hosts: {', '.join(names)})")
        found.extend(history)
        today.append(client_today(loaded, now))
        return [
            risks.draft_risk(
                history,
                loaded.name,
                title=title,
                impact=impact,
                likelihood=likelihood,
                host=host,
                control=control,
                today=today[0],
            )
        ]

    (entry,) = _step(settings, client, risks.REGISTER_KINDS, draft)
    register = risks.register_of([*found, entry], today=today[0])
    return risks.find_risk(register, format_id(RISK_PREFIX, entry.seq))


#: Given a risk's id, the client's entries and its local date, return what to append.
RiskStep = Callable[[str, Sequence[Entry], date], NewEntry | Sequence[NewEntry]]


def step_risk(settings: Settings, risk_id: str, now: datetime, step: RiskStep) -> risks.Risk:
    """Given a risk's id, now and a step, record what the step decides and return the risk
    as it is now.

    Raise BadInput for a malformed or unknown id, or what the step raises: nothing
    is then written.
    """
    item = parse_id(risk_id, RISK_PREFIX, indexed=True)
    created = locate(settings, item, (risks.RISK_ADDED,) if item.index is None else (RUN_FINISHED,))
    name = str(item)
    seen: list[Entry] = []
    today: list[date] = []

    def decide(history: Sequence[Entry], client: Client) -> Sequence[NewEntry]:
        seen.extend(history)
        today.append(client_today(client, now))
        drafted = step(name, history, today[0])
        return [drafted] if isinstance(drafted, NewEntry) else list(drafted)

    appended = _step(settings, created.client or "", risks.REGISTER_KINDS, decide)
    return risks.find_risk(risks.register_of([*seen, *appended], today=today[0]), name)


def accept_risk(
    settings: Settings, risk_id: str, *, by: str, until: str, note: str | None, now: datetime
) -> risks.Risk:
    """Given a risk, who accepts it for the client, until when and why, record the client's
    decision with the acceptance; return the risk."""
    return step_risk(
        settings,
        risk_id,
        now,
        lambda name, history, today: risks.draft_acceptance(
            history, name, by=by, until=until, note=note, today=today
        ),
    )


def close_risk(settings: Settings, risk_id: str, *, note: str, now: datetime) -> risks.Risk:
    """Given a risk and why it is closed, record its closure; return the risk."""
    return step_risk(
        settings,
        risk_id,
        now,
        lambda name, history, today: risks.draft_closure(history, name, note=note, today=today),
    )


def list_risks(settings: Settings, client: str | None, now: datetime) -> list[risks.Risk]:
    """Given a client (None: every client) and now, return the register: the risks added
    by hand and those derived from the runs' residual risks, per client in order opened."""
    found: list[risks.Risk] = []
    for name, entries in _by_client(read_entries(settings, client, risks.REGISTER_KINDS)).items():
        today = client_today(load_client(settings.inventories, name), now)
        found.extend(risks.register_of(entries, today=today))
    return found
