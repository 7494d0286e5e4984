"""Run-started and run-finished ledger entries with real chain hashes, for report tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from webmg_ops.ledger import (
    CURRENT_FORMAT,
    GENESIS_HASH,
    canonical_entry,
    chain_hash,
    format_utc,
    jcs_json,
)
from webmg_ops.ledger.records import Entry
from webmg_ops.runs.records import (
    RUN_FINISHED,
    RUN_REFUSED,
    RUN_STARTED,
    FailedTask,
    HostResult,
    HostStatus,
    Outcome,
    Refusal,
    ResidualRisk,
    RunFinished,
    RunRefused,
    RunStarted,
    to_payload,
)

RUN_ID = "20260505T211500Z-alpenhof-update-a1b2c3"
ACTOR = "Maria Kofler"
STARTED_AT = datetime(2026, 5, 5, 21, 15, tzinfo=UTC)
FINISHED_AT = datetime(2026, 5, 5, 21, 27, 30, tzinfo=UTC)
REASON = "monthly security updates (OpenSSL advisory)"
SCRIPT_MESSAGE = "dpkg: error <script>alert('x')</script> & co"


def make_entry(
    seq: int,
    kind: str,
    payload: Mapping[str, Any],
    at: datetime,
    prev_hash: str = GENESIS_HASH,
    client: str = "alpenhof",
    actor: str = ACTOR,
) -> Entry:
    """Given an entry's fields, return the entry with its real chain hash."""
    payload_json = jcs_json(payload)
    entry_json = canonical_entry(
        seq, kind, client, format_utc(at), actor, payload_json, CURRENT_FORMAT
    )
    return Entry(
        seq=seq,
        kind=kind,
        client=client,
        at=at,
        actor=actor,
        payload_json=payload_json,
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, entry_json),
        format=CURRENT_FORMAT,
    )


def started_entry(
    action: str = "update",
    check: bool = False,
    emergency: bool = False,
    seq: int = 41,
    overridden: str | None = None,
) -> Entry:
    record = RunStarted(
        run_id=RUN_ID,
        action=action,
        check=check,
        emergency=emergency,
        reason=REASON,
        ticket="OPS-1234",
        window="tuesday night",
        hosts=("alpenhof-web", "alpenhof-db"),
        limit=None,
        playbook=f"playbooks/{action}.yml",
        revision="3c743ae",
        versions={"ansible-core": "2.17.5", "webmg-ops": "0.1.0"},
        pid=4242,
        pid_start=987654,
        controller="ops-laptop",
        overridden=overridden,
    )
    return make_entry(seq, RUN_STARTED, to_payload(record), STARTED_AT)


def finished_entry(
    started: Entry,
    outcome: Outcome = Outcome.FAILED,
    evidence: Mapping[str, Any] | None = None,
    check: bool = False,
) -> Entry:
    record = RunFinished(
        run_id=RUN_ID,
        action=started.payload["action"],
        check=check,
        outcome=outcome,
        started_seq=started.seq,
        duration_s=750.0,
        hosts=(
            HostResult(
                host="alpenhof-web",
                status=HostStatus.CHANGED,
                ok=12,
                changed=2,
                changed_tasks=("Install security updates", "Restart nginx"),
                duration_s=420.5,
            ),
            HostResult(
                host="alpenhof-db",
                status=HostStatus.FAILED,
                ok=5,
                failed=1,
                failed_tasks=(FailedTask(task="Install security updates", message=SCRIPT_MESSAGE),),
                duration_s=300.0,
            ),
        ),
        evidence=evidence if evidence is not None else {"packages_upgraded": ["openssl 3.0.15"]},
        residual_risks=(
            ResidualRisk(
                host="alpenhof-db",
                risk="OpenSSL on the database server is still vulnerable",
                reason="the upgrade failed and was rolled back",
            ),
        ),
        next_steps=("Retry the database server update on Thursday night",),
        summary="The web server is up to date; the database server needs a second attempt.",
    )
    return make_entry(
        started.seq + 1, RUN_FINISHED, to_payload(record), FINISHED_AT, prev_hash=started.hash
    )


def refused_entry(
    message: str = "changes are frozen: winter season opening and holiday bookings",
) -> Entry:
    """Return the run-refused entry (seq 7) of an update refused in a freeze."""
    record = RunRefused(
        action="update",
        refusal=Refusal.FREEZE,
        message=message,
        check=False,
        emergency=False,
        reason="",
        ticket=None,
    )
    return make_entry(7, RUN_REFUSED, to_payload(record), STARTED_AT)
