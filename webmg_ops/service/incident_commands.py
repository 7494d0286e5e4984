"""The incident commands' flows: find the incident, let :mod:`incidents` decide, record.

Each function reads what the ledger holds, hands it to a pure decision in
:mod:`webmg_ops.service.incidents`, and appends what it decides through
:func:`webmg_ops.service.records.record_derived` (nothing is written when the
decision refuses). Each returns the incident as a JSON-ready document at the
instant of the command. The time of a command is read once here and passed down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.service import incidents
from webmg_ops.service.escalation import CLOCK_BREACHED, NOTIFICATION_PENDING, NOTIFICATION_SENT
from webmg_ops.service.ids import INCIDENT_PREFIX, ItemId
from webmg_ops.service.incidents import (
    INCIDENT_KINDS,
    OPENED,
    RUN_KINDS,
    TIMELINE_KINDS,
    Incident,
    IncidentRules,
    find_incident,
    fold_incidents,
    incident_document,
    parse_id,
    rules_for,
)
from webmg_ops.service.items import locate
from webmg_ops.service.records import record_derived
from webmg_ops.settings import Settings

#: Decides one entry from a client's rules, the incident and the command's instant.
Decision = Callable[[IncidentRules, Incident, datetime], NewEntry]

#: The largest post-mortem read (a Markdown document, not an attachment store).
MAX_POSTMORTEM_BYTES = 1_000_000


def _now() -> datetime:
    return datetime.now(UTC)


def find_client_of(settings: Settings, incident_id: str) -> tuple[int, str]:
    """Given an incident id, return its seq and its client, read from its opening entry.

    Raise BadInput if the id is malformed or names no incident.
    """
    entry = locate(settings, ItemId(INCIDENT_PREFIX, parse_id(incident_id)), [OPENED])
    assert entry.client is not None  # locate finds only entries of a client
    return entry.seq, entry.client


def open_incident(
    settings: Settings,
    client_name: str,
    *,
    title: str,
    impact: str,
    criticality: str,
    host: str | None = None,
    reported_by: str | None = None,
    ticket: str | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Given a client and what is reported, record a new incident and return it.

    Raise BadInput for an unknown client, an empty title, an unknown impact or
    criticality, or a host not in the client's inventory (nothing written).
    """
    rules = rules_for(load_client(settings.inventories, client_name))
    at = now or _now()

    def derive(_history: Sequence[Entry]) -> list[NewEntry]:
        return [
            incidents.decide_open(
                rules,
                title=title,
                impact=impact,
                criticality=criticality,
                host=host,
                reported_by=reported_by,
                ticket=ticket,
                by=by,
                now=at,
            )
        ]

    (opened,) = record_derived(settings, rules.client, [OPENED], derive)
    incident = fold_incidents([opened])[opened.seq]
    return incident_document(incident, rules, at)


def act_on_incident(
    settings: Settings, incident_id: str, decide: Decision, *, now: datetime | None = None
) -> dict[str, Any]:
    """Given an incident id and a decision, record what the decision derives from the
    incident's entries, and return the incident as it stands after it.

    Raise BadInput for an unknown id or what the decision raises, Refused as the
    decision does (nothing written either way).
    """
    seq, client_name = find_client_of(settings, incident_id)
    rules = rules_for(load_client(settings.inventories, client_name))
    at = now or _now()
    seen: list[Entry] = []

    def derive(history: Sequence[Entry]) -> list[NewEntry]:
        seen.extend(history)
        return [decide(rules, find_incident(history, seq), at)]

    made = record_derived(settings, client_name, TIMELINE_KINDS, derive)
    incident = fold_incidents([*seen, *made])[seq]
    return incident_document(incident, rules, at)


def read_postmortem(file: Path) -> str:
    """Given a post-mortem's path, return its text.

    Raise BadInput if it is missing, not a regular file, too large or not UTF-8 text.
    """
    try:
        if not file.is_file():
            raise BadInput(f"post-mortem {file} does not exist or is not a file")
        if file.stat().st_size > MAX_POSTMORTEM_BYTES:
            raise BadInput(f"post-mortem {file} is larger than {MAX_POSTMORTEM_BYTES} bytes")
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"post-mortem {file} is not UTF-8 text") from None
    except OSError as error:
        raise BadInput(f"cannot read post-mortem {file}: {error.strerror or error}") from None


def list_incidents(
    settings: Settings,
    client_name: str | None = None,
    *,
    open_only: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Given an optional client, return its incidents (every client's without one),
    oldest first, each with its clocks at ``now``; only open ones with ``open_only``.

    Raise BadInput for an unknown client.
    """
    at = now or _now()
    client = None if client_name is None else load_client(settings.inventories, client_name)
    with open_ledger(settings.ledger_url, create=False) as ledger:
        entries = list(
            ledger.entries(client=None if client is None else client.name, kinds=TIMELINE_KINDS)
        )
    rules: dict[str, IncidentRules] = {}
    documents = []
    for incident in fold_incidents(entries).values():
        if open_only and not incident.is_open:
            continue
        if incident.client not in rules:
            rules[incident.client] = rules_for(load_client(settings.inventories, incident.client))
        documents.append(incident_document(incident, rules[incident.client], at))
    return documents


#: What ``incident show`` reads besides the timeline's own kinds: the runs that worked on
#: the incident, its clocks' recorded breaches and each notification's delivery (sent, or
#: pending with the reason; a claim is only the tick's bookkeeping).
_SHOWN_KINDS = (
    *TIMELINE_KINDS,
    *RUN_KINDS,
    CLOCK_BREACHED,
    NOTIFICATION_SENT,
    NOTIFICATION_PENDING,
)


def show_incident(
    settings: Settings, incident_id: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Given an incident id, return the incident with its clocks at ``now`` and its
    timeline: its steps, the runs that named it, its recorded breaches and notifications.
    Raise BadInput for an unknown id."""
    seq, client_name = find_client_of(settings, incident_id)
    rules = rules_for(load_client(settings.inventories, client_name))
    with open_ledger(settings.ledger_url, create=False) as ledger:
        history = list(ledger.entries(client=client_name, kinds=_SHOWN_KINDS))
    return incident_document(find_incident(history, seq), rules, now or _now())


def incident_for_run(settings: Settings, client_name: str, incident_id: str) -> str:
    """Given a client and the incident a run is to work on, return the incident's id as
    written (``INC-<seq>``), for the run's entries.

    Raise BadInput if the id is malformed, names no incident, names another client's
    incident, or names a closed one (a run on a closed incident belongs to a new one).
    """
    seq, owner = find_client_of(settings, incident_id)
    if owner != client_name:
        raise BadInput(f"{incidents.format_id(seq)} is an incident of {owner}, not {client_name}")
    with open_ledger(settings.ledger_url, create=False) as ledger:
        history = list(ledger.entries(client=client_name, kinds=INCIDENT_KINDS))
    incident = find_incident(history, seq)
    if not incident.is_open:
        raise BadInput(f"{incident.id} is closed: open a new incident for what this run is about")
    return incident.id
