"""``incident collect``: read the evidence on an incident's hosts and attach it.

The flow finds the incident (its client from its opening entry), refuses a
closed incident or a host gone from the inventory before any connection, then
opens one session per host, all at once, with the client's key and the host
keys enrolled in the client's known_hosts alone (:mod:`webmg_ops.remote.session`:
an unknown or changed key ends the connection before any command). Each host
runs the read-only :data:`~webmg_ops.service.evidence.PROBES` one after the
other, each bounded in time and size; a host that fails, or a command that fails
or hangs, is recorded as such and never stops the others. The pure
:mod:`webmg_ops.service.evidence` then decides the one ``incident-evidence``
entry, appended through :func:`~webmg_ops.service.records.record_derived`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from webmg_ops.ansible.connection import Connection, read_inventory_variables
from webmg_ops.ansible.vault import Vault, client_secrets
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.remote.session import COMMAND_TIMEOUT_S, open_host_session
from webmg_ops.remote.ssh import CONNECT_TIMEOUT_S, HostKeyProblem, Unreachable
from webmg_ops.service import evidence
from webmg_ops.service.evidence import HostCollection, ProbeRun
from webmg_ops.service.incident_commands import find_client_of
from webmg_ops.service.incidents import (
    EVIDENCE,
    INCIDENT_KINDS,
    TIMELINE_KINDS,
    Incident,
    find_incident,
    format_id,
    rules_for,
)
from webmg_ops.service.records import record_derived
from webmg_ops.settings import Settings

#: Hosts read at once; more wait for a free slot.
MAX_PARALLEL_HOSTS = 16

#: Told each host's document (see :func:`evidence.host_document`) as soon as it is read.
HostDone = Callable[[Mapping[str, Any]], None]


def read_host(connection: Connection, timeout: float, connect_timeout: float) -> HostCollection:
    """Given a host's connection settings, a timeout per command and one to connect,
    run every probe on it and return what it gave (never raises for the host).

    The session verifies the host key first: an unknown or changed key, or a host
    that cannot be reached, is the host's problem and no command is sent.
    """
    host = connection.host
    try:
        session = open_host_session(connection, connect_timeout)
    except HostKeyProblem as error:
        problem = evidence.HOST_KEY_CHANGED if error.changed else evidence.HOST_KEY_UNKNOWN
        return HostCollection(host, problem=problem, reason=str(error))
    except Unreachable as error:
        return HostCollection(host, problem=evidence.UNREACHABLE, reason=str(error))
    runs: list[ProbeRun] = []
    lost: str | None = None
    with session:
        for probe in evidence.PROBES:
            if lost is not None:
                runs.append(ProbeRun(probe, None, run=False))
                continue
            try:
                read = session.read_bounded(probe.command, evidence.READ_LIMIT, timeout)
            except Unreachable as error:
                lost = str(error)
                runs.append(ProbeRun(probe, None, lost=lost))
                continue
            runs.append(
                ProbeRun(
                    probe,
                    read.status,
                    read.stdout,
                    read.stderr,
                    timed_out=read.timed_out,
                    cut=read.cut,
                )
            )
    return HostCollection(host, runs=tuple(runs))


def _incident(settings: Settings, client: str, seq: int) -> Incident:
    with open_ledger(settings.ledger_url, create=False) as ledger:
        history = list(ledger.entries(client=client, kinds=INCIDENT_KINDS))
    return find_incident(history, seq)


def collect_evidence(
    settings: Settings,
    incident_id: str,
    *,
    by: str | None = None,
    vault_password_file: Path | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    on_host: HostDone | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Given an incident id, who collects, the vault password file (the inventory's
    variables may be encrypted), the timeouts (per command, to connect) and a function
    told each host's document as it is read, read the evidence on the incident's hosts,
    record it and return it: ``id`` (the incident's), ``evidence`` (the entry's seq),
    ``at``, ``by``, ``summary``, ``complete`` and each host's document.

    Raise BadInput, before any connection and with nothing written, for an unknown id,
    a closed incident, a host of the incident gone from the inventory, or a timeout
    that is not positive.
    """
    if timeout <= 0 or connect_timeout <= 0:
        raise BadInput("--timeout must be a positive number of seconds")
    seq, client_name = find_client_of(settings, incident_id)
    client = load_client(settings.inventories, client_name)
    incident = _incident(settings, client.name, seq)
    evidence.refuse_closed(incident)
    hosts = evidence.hosts_to_collect(incident, (host.name for host in client.hosts))
    vault = Vault(vault_password_file)
    inventory = read_inventory_variables(client.folder, vault)
    secrets = client_secrets(client.folder, vault, inventory.variables)
    missing = [host for host in hosts if host not in inventory.connections]
    if missing:
        raise BadInput(f"{client.name}: no connection settings for {', '.join(missing)}")

    read: dict[str, HostCollection] = {}
    with ThreadPoolExecutor(max_workers=min(len(hosts), MAX_PARALLEL_HOSTS)) as pool:
        futures = {
            pool.submit(read_host, inventory.connections[host], timeout, connect_timeout): host
            for host in hosts
        }
        for future in as_completed(futures):
            collection = future.result()
            read[collection.host] = collection
            if on_host is not None:
                on_host(evidence.host_document(collection, secrets))

    at = now or datetime.now(UTC)

    def derive(history: Sequence[Entry]) -> list[NewEntry]:
        # Decided again on what the ledger holds now: the incident may have been
        # closed while its hosts were read.
        current = find_incident(history, seq)
        collections = [read[host] for host in hosts]
        return [evidence.decide_evidence(current, collections, secrets, by=by, now=at)]

    (entry,) = record_derived(settings, client.name, INCIDENT_KINDS, derive)
    return evidence_document(entry, rules_for(client).zone)


def evidence_document(entry: Entry, zone: ZoneInfo) -> dict[str, Any]:
    """Given an ``incident-evidence`` entry and its client's time zone, return it as the
    commands print it: the incident's ``id``, the entry's seq as ``evidence``, when (in
    that zone), by whom, and its payload (already masked and safe when recorded)."""
    payload = entry.payload
    return {
        "id": format_id(payload["incident"]),
        "evidence": entry.seq,
        "client": entry.client,
        "at": entry.at.astimezone(zone).isoformat(),
        "by": entry.actor,
        "summary": payload["summary"],
        "complete": payload["complete"],
        "hosts": payload["hosts"],
    }


def list_evidence(settings: Settings, incident_id: str) -> list[dict[str, Any]]:
    """Given an incident id, return the evidence attached to it, oldest first.

    Raise BadInput for an unknown id.
    """
    seq, client_name = find_client_of(settings, incident_id)
    with open_ledger(settings.ledger_url, create=False) as ledger:
        history = list(ledger.entries(client=client_name, kinds=TIMELINE_KINDS))
    find_incident(history, seq)
    zone = rules_for(load_client(settings.inventories, client_name)).zone
    return [
        evidence_document(entry, zone)
        for entry in history
        if entry.kind == EVIDENCE and entry.payload.get("incident") == seq
    ]
