"""The change a deploy run installs: read from the ledger before the run, recorded after it.

``run CLIENT deploy --change CHG-n`` names the change; before anything is
written, :func:`with_change` reads it from the ledger and puts what it deploys
(package -> version) in the request, where the ``deploy`` action plans its
play from. When the deploy succeeded, :func:`deployed_entry` drafts the
``change-deployed`` entry that the engine appends with the ``run-finished``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from webmg_ops.config.clients import Client
from webmg_ops.engine.governance import rules_for
from webmg_ops.errors import BadInput
from webmg_ops.ledger import LedgerReader, NewEntry
from webmg_ops.runs.records import Outcome, RunRequest
from webmg_ops.service import changes
from webmg_ops.service.ids import CHANGE_PREFIX, parse_id


def read_change(ledger: LedgerReader, client: Client, change_id: str) -> changes.Change:
    """Given the ledger, a client and a change's id as typed, return the change.

    Raise BadInput for a malformed id, an id naming no change, or a change of
    another client.
    """
    item = parse_id(change_id, CHANGE_PREFIX)
    created = next(ledger.entries(after_seq=item.seq - 1, limit=1), None)
    if created is None or created.seq != item.seq or created.kind != changes.CHANGE_REQUESTED:
        raise BadInput(f"unknown change {item}")
    if created.client != client.name:
        raise BadInput(f"{item} is a change of {created.client}, not of {client.name}")
    history = list(ledger.entries(client=client.name, kinds=changes.CHANGE_KINDS))
    return changes.find_change(history, str(item))


def with_change(ledger: LedgerReader, client: Client, request: RunRequest) -> RunRequest:
    """Given the ledger, a client and a request, return the request with what its change
    deploys (a deploy) or as it is (any other action).

    Raise BadInput for ``--change`` on an action that deploys nothing, a deploy without
    ``--change``, an unknown change or another client's, a change naming no version,
    or (not for a dry run) a change that is not scheduled or approved.
    """
    if not rules_for(request.action).deploys_change:
        if request.change is not None:
            raise BadInput(
                f"--change names the change a deploy installs; {request.action} takes none"
            )
        if request.deploys:
            raise BadInput(f"{request.action} deploys nothing")
        return request
    if request.change is None:
        raise BadInput("deploy needs --change CHG-n: the change naming the version it installs")
    change = read_change(ledger, client, request.change)
    deploys = changes.deployment_of(change, check=request.check)
    return replace(request, change=change.id, deploys=deploys)


def deployed_entry(
    ledger: LedgerReader, client: Client, request: RunRequest, finished: Mapping[str, Any]
) -> NewEntry | None:
    """Given the ledger, a client, a deploy's request and its ``run-finished`` payload,
    return the ``change-deployed`` entry, naming the run and the versions before and
    after on each host.

    None: not a deploy, a dry run, a deploy that did not succeed, or one limited to some
    of the client's hosts (``--limit``): the others may still run the old version.
    """
    if request.change is None or request.check:
        return None
    if finished.get("outcome") != Outcome.SUCCEEDED.value:
        return None
    ran = {str(host.get("host")) for host in finished.get("hosts") or []}
    if ran != {host.name for host in client.hosts}:
        return None
    change = read_change(ledger, client, request.change)
    deployment = finished.get("evidence", {}).get("deployment") or {}
    return changes.draft_deployed(
        change, run_id=str(finished["run_id"]), versions=deployment.get("hosts") or {}
    )
