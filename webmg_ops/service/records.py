"""What is recorded outside runs: notes, approvals, host-key enrolments and the
service's items (incidents, changes, risks, decisions).

The engine records runs; every other entry goes through here, so that the
ledger has two writers to read when an entry's origin is in question. Each
function opens the ledger, appends and closes it; enrolment appends through
:func:`host_key_recorder`, one entry as each key is written to the client's
known_hosts, so that none is lost. The service's flows decide in pure modules
what to record from what the ledger already holds, and append through
:func:`record_derived`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from webmg_ops.ansible.inventory import InventoryHost
from webmg_ops.config.clients import Client, load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.runs.records import APPROVAL
from webmg_ops.settings import Settings

#: The entry of a note (a decision or an observation).
NOTE = "note"
#: The entries of a host key enrolled for the first time, and of one that replaced another.
HOST_ENROLLED = "host-enrolled"
HOST_KEY_CHANGED = "host-key-changed"
#: The entry of a server's first contact: its maintenance account made from the client's login.
HOST_BOOTSTRAPPED = "host-bootstrapped"
#: A run put in the job queue (who asked, when it may start), a queued run canceled
#: before any worker took it, and one a worker refused (its revision differs).
RUN_REQUESTED = "run-requested"
RUN_REQUEST_CANCELED = "run-request-canceled"
RUN_REQUEST_REFUSED = "run-request-refused"
QUEUE_KINDS = frozenset({RUN_REQUESTED, RUN_REQUEST_CANCELED, RUN_REQUEST_REFUSED})


def record_note(settings: Settings, client_name: str, text: str) -> Entry:
    """Given a client and a note's text, record the note and return its entry.

    Raise BadInput for an empty text or an unknown client (nothing written).
    """
    if not text.strip():
        raise BadInput("--text is empty")
    client = load_client(settings.inventories, client_name)
    with open_ledger(settings.ledger_url) as ledger:
        return ledger.append(NOTE, client.name, {"text": text})


def record_queue_event(
    settings: Settings, client_name: str, kind: str, payload: Mapping[str, object]
) -> Entry:
    """Given a client, a queue event's kind (one of :data:`QUEUE_KINDS`) and its payload
    (the job's id and request), record it and return its entry.

    Raise BadInput for an unknown client (nothing written); ValueError for another kind.
    """
    if kind not in QUEUE_KINDS:
        raise ValueError(f"not a queue event: {kind}")
    client = load_client(settings.inventories, client_name)
    with open_ledger(settings.ledger_url) as ledger:
        return ledger.append(kind, client.name, dict(payload))


def record_approval(
    settings: Settings, client_name: str, action: str, approver: str, note: str
) -> Entry:
    """Given a client, an action, the approver and a note, record an approval and return it.

    Raise BadInput for an unknown client.
    """
    client = load_client(settings.inventories, client_name)
    with open_ledger(settings.ledger_url) as ledger:
        return ledger.append(
            APPROVAL, client.name, {"action": action, "by": approver, "note": note}
        )


#: Records one enrolment: (client, payload with host, address, key type and fingerprints,
#: whether it replaced a key) -> its entry.
HostKeyRecorder = Callable[[str, Mapping[str, object], bool], Entry]


@contextmanager
def host_key_recorder(settings: Settings) -> Iterator[HostKeyRecorder]:
    """Given the settings, open the ledger and yield a function that records one host key's
    enrolment; the ledger closes when the block ends.

    Opened before the first key is written to a known_hosts file, so that a ledger that
    cannot be reached stops the enrolment before any key is trusted unrecorded.
    """
    with open_ledger(settings.ledger_url) as ledger:

        def record(client: str, payload: Mapping[str, object], changed: bool) -> Entry:
            kind = HOST_KEY_CHANGED if changed else HOST_ENROLLED
            return ledger.append(kind, client, dict(payload))

        yield record


#: Records one bootstrap: (client, its payload, the enrolment's payload when the host key
#: is new or changed, whether it replaced a key) -> the entries, appended together.
HostRecorder = Callable[[str, Mapping[str, object], Mapping[str, object] | None, bool], list[Entry]]


@contextmanager
def host_recorder(settings: Settings) -> Iterator[HostRecorder]:
    """Given the settings, open the ledger and yield a function that records one host's
    bootstrap, with the enrolment of its key when it is new or changed, in one
    transaction; the ledger closes when the block ends.

    Opened before any host is touched, so that a ledger that cannot be reached stops
    the bootstrap before it begins.
    """
    with open_ledger(settings.ledger_url) as ledger:

        def record(
            client: str,
            payload: Mapping[str, object],
            enrolment: Mapping[str, object] | None,
            changed: bool,
        ) -> list[Entry]:
            drafts = [NewEntry(HOST_BOOTSTRAPPED, client, dict(payload))]
            if enrolment is not None:
                kind = HOST_KEY_CHANGED if changed else HOST_ENROLLED
                drafts.insert(0, NewEntry(kind, client, dict(enrolment)))
            return ledger.append_many(drafts)

        yield record


def _fingerprint_of(key_text: str) -> str:
    blob = base64.b64decode(key_text.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def record_lab_enrolment(
    settings: Settings,
    before: Mapping[str, Mapping[str, str]],
    after: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """Given each client's enrolled keys (client -> name -> key text) before and after the
    lab wrote its keys, record each key it added or changed as an enrolment entry; return
    ``client/host`` of each.

    The lab enrols its own hosts: it made their keys, so no confirmation is asked. Each
    host is named as its client's inventory names it, the address beside it, like the
    enrolments of ``enroll`` and ``bootstrap``; an address the inventory does not name
    (a client whose inventory changed since) is named by its address.
    """
    changes = [
        (client, name, key, before.get(client, {}).get(name))
        for client, keys in after.items()
        for name, key in keys.items()
        if before.get(client, {}).get(name) != key
    ]
    if not changes:
        return []
    names = {
        client: {host.address: host.name for host in _inventory_hosts(settings, client)}
        for client in {client for client, *_ in changes}
    }
    with host_key_recorder(settings) as record:
        for client, address, key, previous in changes:
            record(
                client,
                {
                    "host": names[client].get(address, address),
                    "address": address,
                    "key_type": key.split()[0],
                    "fingerprint": _fingerprint_of(key),
                    "previous_fingerprint": _fingerprint_of(previous) if previous else None,
                    "enrolled_by": "rehearsal lab",
                },
                previous is not None,
            )
    return [
        f"{client}/{names[client].get(address, address)}"
        for client, address, _key, _previous in changes
    ]


def _inventory_hosts(settings: Settings, client: str) -> tuple[InventoryHost, ...]:
    """Return the hosts of CLIENT's inventory, or none if the client cannot be loaded
    (the lab's enrolment is recorded all the same, by address)."""
    try:
        return load_client(settings.inventories, client).hosts
    except BadInput:
        return ()


#: Given a client's entries of the kinds asked for (oldest first), return the entries to
#: append; raise BadInput to refuse (nothing is then written).
Derivation = Callable[[Sequence[Entry]], Sequence[NewEntry]]


def record_derived(
    settings: Settings, client_name: str, kinds: Sequence[str], derive: Derivation
) -> list[Entry]:
    """Given a client, the entry kinds a decision reads, and the decision, append what it
    derives from the client's entries of those kinds, read and appended in one
    transaction under the ledger's write lock; return them.

    Raise BadInput for an unknown client or what ``derive`` raises (nothing written),
    EnvironmentProblem if the ledger fails.
    """
    client = load_client(settings.inventories, client_name)
    with open_ledger(settings.ledger_url) as ledger:
        return ledger.append_derived(client.name, kinds, derive)


#: Appends what a decision derives for one client already loaded (see :func:`record_derived`).
DerivedRecorder = Callable[[Client, Sequence[str], Derivation], list[Entry]]
#: Appends drafted entries in one transaction.
DraftRecorder = Callable[[Sequence[NewEntry]], list[Entry]]


@contextmanager
def derived_recorders(settings: Settings) -> Iterator[tuple[DerivedRecorder, DraftRecorder]]:
    """Given the settings, open the ledger once and yield two recorders: one doing what
    :func:`record_derived` does for a client already loaded, one appending drafts; the
    ledger closes when the block ends.

    For a command over many clients (``tick``): each call is its own transaction (the
    derived one under the ledger's write lock), the connection is opened once.
    Raise EnvironmentProblem if the ledger fails.
    """
    with open_ledger(settings.ledger_url) as ledger:

        def derived(client: Client, kinds: Sequence[str], derive: Derivation) -> list[Entry]:
            return ledger.append_derived(client.name, kinds, derive)

        def drafts(items: Sequence[NewEntry]) -> list[Entry]:
            return ledger.append_many(items)

        yield derived, drafts


def ledger_recorder(settings: Settings) -> Callable[[Sequence[NewEntry]], list[Entry]]:
    """Given the settings, return a recorder for a command outside runs (``offsite
    publish``): each call appends its drafted entries in one transaction.

    The ledger is opened per call, so that an entry is written before the
    caller goes on (a pending item leaves its file only once recorded).
    Raise EnvironmentProblem if the ledger fails.
    """

    def record(drafts: Sequence[NewEntry]) -> list[Entry]:
        with open_ledger(settings.ledger_url) as ledger:
            return ledger.append_many(drafts)

    return record
