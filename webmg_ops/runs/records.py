"""Runs as records: what a maintenance run is, as it is written to the ledger.

A run is opened by a ``run-started`` entry before anything touches a host
and closed by a ``run-finished`` entry; a run refused by policy is a single
``run-refused`` entry. These frozen dataclasses are the one definition of
those payloads: the engine writes them, run logs and reports read them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

#: The actions the engine knows; each has a playbook ``playbooks/<action>.yml``.
ACTIONS: tuple[str, ...] = (
    "check",
    "diagnose",
    "update",
    "harden",
    "backup",
    "drill",
    "deploy",
    "target",
)

#: The client's report: written by ``report``, no run; it may be queued like a run.
REPORT = "report"
#: What a job of the queue may carry out: a run of an action, or the client's report.
QUEUED_ACTIONS: tuple[str, ...] = (*ACTIONS, REPORT)

#: Actions that change hosts, and so need a window, an approval where the
#: policy asks for one, and the client lock.
CHANGING_ACTIONS: frozenset[str] = frozenset({"update", "harden", "backup", "deploy"})

RUN_STARTED = "run-started"
RUN_FINISHED = "run-finished"
RUN_REFUSED = "run-refused"
APPROVAL = "approval"
LOCK_TAKEOVER = "lock-takeover"
#: A client's report was written (by ``report``): its period, files and their sha256.
REPORT_WRITTEN = "report-written"
#: A written report was published (by ``report --publish``): its object keys, sha256, the
#: links' expiry and whether the business owner was notified (never the links).
REPORT_PUBLISHED = "report-published"


class Outcome(StrEnum):
    """How a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    INTERRUPTED = "interrupted"


class HostStatus(StrEnum):
    """How a run ended on one host."""

    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"

    @property
    def carried_out(self) -> bool:
        """Return whether the run did its work on the host (ok or changed)."""
        return self in (HostStatus.OK, HostStatus.CHANGED)


class Refusal(StrEnum):
    """Why policy refused a run."""

    WINDOW = "window"
    FREEZE = "freeze"
    LOCK = "lock"
    APPROVAL = "approval"
    HOST_KEY = "host-key"
    PREFLIGHT = "preflight"
    DIAGNOSTIC = "diagnostic"
    PROSPECT = "prospect"
    #: The client's level does not include the action (``changes.deploy_allowed``).
    LEVEL = "level"


@dataclass(frozen=True)
class RunRequest:
    """What an engineer asked for: the action, the hosts, why, and how carefully."""

    client: str
    action: str
    check: bool = False
    limit: str | None = None
    reason: str = ""
    ticket: str | None = None
    emergency: bool = False
    #: The incident this run works on (``INC-<seq>``): run log and timeline name each other.
    incident: str | None = None
    vault_password_file: Path | None = None
    verbosity: int = 0
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    #: The change a deploy installs (``CHG-n``), as the operator named it.
    change: str | None = None
    #: What that change deploys (package -> version): read from the ledger by the engine,
    #: never typed by the operator.
    deploys: Mapping[str, str] = field(default_factory=dict)
    #: The queued job this run carries out, when a worker started it.
    job: int | None = None


def new_run_id(client: str, action: str, now: datetime | None = None) -> str:
    """Given a client and an action, return a fresh run id, sortable by time.

    The id is also a folder name (``var/runs/<run-id>/``) and ansible-runner's ident.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{client}-{action}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class FailedTask:
    """A task that failed on a host, with its (masked) message."""

    task: str
    message: str


@dataclass(frozen=True)
class HostResult:
    """What a run did on one host."""

    host: str
    status: HostStatus
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    changed_tasks: tuple[str, ...] = ()
    failed_tasks: tuple[FailedTask, ...] = ()
    duration_s: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class ResidualRisk:
    """A risk left after a run, to be carried to the risk register and reports."""

    host: str | None
    risk: str
    reason: str


@dataclass(frozen=True)
class RunStarted:
    """Payload of a ``run-started`` entry, written before any host is touched."""

    run_id: str
    action: str
    check: bool
    emergency: bool
    reason: str
    ticket: str | None
    window: str | None
    hosts: tuple[str, ...]
    limit: str | None
    playbook: str
    revision: str
    versions: Mapping[str, str]
    pid: int
    pid_start: int
    controller: str
    approval_seq: int | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)
    #: The rules an emergency went past (``outside windows``, ``freeze NAME``,
    #: ``diagnostic first``), comma-separated; None when nothing was overridden.
    overridden: str | None = None
    #: The incident the run works on (``INC-<seq>``), if it names one.
    incident: str | None = None
    #: The change the run deploys (``CHG-n``); None for every other run.
    change: str | None = None
    #: The queued job a worker ran (its id and the worker's PID on this controller);
    #: None for a run started by hand.
    job: Mapping[str, int] | None = None


@dataclass(frozen=True)
class RunFinished:
    """Payload of a ``run-finished`` entry, which closes a run."""

    run_id: str
    action: str
    check: bool
    outcome: Outcome
    started_seq: int
    duration_s: float
    hosts: tuple[HostResult, ...]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    residual_risks: tuple[ResidualRisk, ...] = ()
    next_steps: tuple[str, ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class RunRefused:
    """Payload of a ``run-refused`` entry: policy said no, nothing ran."""

    action: str
    refusal: Refusal
    message: str
    check: bool
    emergency: bool
    reason: str
    ticket: str | None
    incident: str | None = None


def to_payload(record: RunStarted | RunFinished | RunRefused) -> dict[str, Any]:
    """Given a run record, return it as a JSON-ready ledger payload."""
    payload: dict[str, Any] = _plain(asdict(record))
    return payload


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def host_result_from_payload(data: Mapping[str, Any]) -> HostResult:
    """Given a host result as stored in a payload, return the :class:`HostResult`."""
    return HostResult(
        host=data["host"],
        status=HostStatus(data["status"]),
        ok=data.get("ok", 0),
        changed=data.get("changed", 0),
        failed=data.get("failed", 0),
        skipped=data.get("skipped", 0),
        unreachable=data.get("unreachable", 0),
        changed_tasks=tuple(data.get("changed_tasks", ())),
        failed_tasks=tuple(FailedTask(**item) for item in data.get("failed_tasks", ())),
        duration_s=data.get("duration_s", 0.0),
        note=data.get("note", ""),
    )
