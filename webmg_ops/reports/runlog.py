"""The client run log: one readable record of each run, rendered from the ledger.

A run log is written for a client's non-technical owner: plain words first
(what was done, why, when in the client's time zone, by whom, on which
servers, with what outcome), then the details (changes, failures, residual
risks, next steps, evidence) and, last, the ledger seq and hash of the
entries that prove the record. It is rendered with Jinja2 from the recorded
ledger entries only, never from raw Ansible output, as Markdown and as a
standalone HTML page, under ``<var_dir>/runs/<run-id>/``.

Evidence is rendered by the partial ``evidence/<action>.{md,html}.j2`` when it
exists, else by a generic key/value rendering. The ``check`` partial reads,
under ``evidence["hosts"][host]``, any of these keys (missing ones are shown
as not recorded):

- ``os``, ``kernel`` (text); ``uptime_s`` (seconds) or ``uptime`` (text);
- ``pending_updates``: ``security`` and ``other`` (counts),
  ``security_packages`` and ``other_packages`` (package names);
- ``reboot_required`` (bool);
- ``disks``: a list of ``mount``, ``used_percent``, ``size_bytes``, ``available_bytes``;
- ``listening_ports``: a list of ``port``, ``protocol``, ``address``, ``process``
  (or bare port numbers);
- ``time_sync``: ``synchronized`` (bool) and ``service`` (text), or a bool.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from webmg_ops.config.contract import Contract
from webmg_ops.errors import BadInput
from webmg_ops.ledger.note import AgencyCheckpoint, agency_checkpoint
from webmg_ops.ledger.records import Checkpoint, Entry
from webmg_ops.runs.records import (
    ACTIONS,
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
    host_result_from_payload,
)
from webmg_ops.secrets import SecretSet

RUNS_FOLDER = "runs"
MARKDOWN_FILE = "run-log.md"
HTML_FILE = "run-log.html"
#: The signed checkpoint note of the record's last entry, beside the log.
CHECKPOINT_FILE = "checkpoint.txt"
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600

IN_PROGRESS = "in-progress"
REFUSED = "refused"


@dataclass(frozen=True)
class _Start:
    """What a run log shows of a :class:`~webmg_ops.runs.records.RunStarted` payload.

    Read field by field, so that the engine may add fields to its records
    without breaking the logs of past runs.
    """

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
    versions: Mapping[str, Any]
    controller: str
    #: The rules an emergency went past (``outside windows``, ``freeze NAME``,
    #: ``diagnostic first``); None in records written before it was kept.
    overridden: str | None = None
    #: The incident the run worked on (``INC-<seq>``), if it named one.
    incident: str | None = None


_Record = TypeVar("_Record", _Start, RunFinished, RunRefused)

_RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class ActionText:
    """How an action is named and explained to a client."""

    title: str
    purpose: str


ACTION_TEXTS: dict[str, ActionText] = {
    "check": ActionText(
        "Health check",
        "We looked at the state of the servers (system version, pending updates, disk "
        "space, open network ports, clock) without changing anything.",
    ),
    "diagnose": ActionText(
        "Diagnostic",
        "We looked at the servers and the answers of the scoping questionnaire, without "
        "changing anything, to say whether support fits, which level to choose and what to "
        "do first.",
    ),
    "update": ActionText(
        "Software updates",
        "We installed software updates, so that known security holes and bugs are fixed.",
    ),
    "harden": ActionText(
        "Security hardening",
        "We applied and verified the agreed security settings of the servers.",
    ),
    "backup": ActionText(
        "Backup",
        "We made an encrypted backup copy of your data on separate backup storage.",
    ),
    "drill": ActionText(
        "Restore drill",
        "We restored a backup as a test, to prove that your data can be recovered and to "
        "measure how long it takes.",
    ),
    "deploy": ActionText(
        "Deployment",
        "We installed a new version of your application.",
    ),
    "target": ActionText(
        "Backup target",
        "We prepared our backup storage for our clients' servers: each server may only add "
        "backups of its own, never delete or change them.",
    ),
}


@dataclass(frozen=True)
class StateText:
    """How a run's state is named and explained to a client."""

    label: str
    explanation: str


STATE_TEXTS: dict[str, StateText] = {
    Outcome.SUCCEEDED: StateText(
        "Succeeded", "The work was completed successfully on every server."
    ),
    Outcome.FAILED: StateText(
        "Failed",
        "The work could not be completed on every server. The failures are listed below "
        "with what happens next.",
    ),
    Outcome.CANCELED: StateText("Canceled", "An engineer stopped the run before it was finished."),
    Outcome.INTERRUPTED: StateText(
        "Interrupted",
        "The run stopped before it was finished (for example, a connection was lost). "
        "The servers are listed below in the state we recorded.",
    ),
    IN_PROGRESS: StateText(
        "In progress",
        "The run has started and has not finished yet. This log will be replaced by the "
        "final one when it ends.",
    ),
    REFUSED: StateText(
        "Refused",
        "The run was refused by the rules agreed in your contract. Nothing was done on any server.",
    ),
}

HOST_STATUS_TEXTS: dict[str, str] = {
    HostStatus.OK: "Done, nothing needed changing",
    HostStatus.CHANGED: "Done, changes made",
    HostStatus.FAILED: "Failed",
    HostStatus.UNREACHABLE: "Could not be reached",
    HostStatus.EXCLUDED: "Left out of this run",
    HostStatus.UNKNOWN: "No result recorded",
    IN_PROGRESS: "In progress",
}

DRY_RUN_HOST_STATUS_TEXTS: dict[str, str] = {
    HostStatus.OK: "Checked, nothing would change",
    HostStatus.CHANGED: "Checked, changes would be made",
}
"""Host states that read differently when nothing was changed (dry run)."""

REFUSAL_TEXTS: dict[str, str] = {
    Refusal.WINDOW: "it was outside the agreed maintenance windows",
    Refusal.FREEZE: "it fell in a period in which no changes are made (change freeze)",
    Refusal.LOCK: "another run for you was already in progress",
    Refusal.APPROVAL: "the required approval had not been given",
    Refusal.HOST_KEY: "a server's identity (its SSH host key) did not match the one on record",
    Refusal.PREFLIGHT: "the checks made before any change found a server not ready",
    Refusal.DIAGNOSTIC: "a diagnostic check found a problem to solve first",
    Refusal.LEVEL: "your service level does not include it",
}


@dataclass(frozen=True)
class RunLogFiles:
    """The files of one run log."""

    markdown: Path
    html: Path


@dataclass(frozen=True)
class HostLine:
    """One server of a run, as the log shows it."""

    host: str
    status: str
    label: str
    result: HostResult | None = None


@dataclass(frozen=True)
class HostFailure:
    """One failure on a server: a failed task, or the server being unreachable."""

    host: str
    task: str
    message: str


@dataclass(frozen=True)
class Proof:
    """A ledger entry that proves the record, and how to check it later."""

    label: str
    seq: int
    hash: str
    at: str

    @property
    def checkpoint(self) -> str:
        """The ``SEQ:HASH`` text that ``webmg-ops ledger verify --checkpoint`` takes."""
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class RunLogView:
    """Everything a run log template shows, already in plain words."""

    client_name: str
    owner: str
    run_id: str
    action: str
    action_text: ActionText
    state: str
    state_text: StateText
    check: bool
    emergency: bool
    #: What an emergency went past, as recorded; None when not recorded.
    overridden: str | None
    reason: str
    ticket: str | None
    window: str | None
    actor: str
    timezone: str
    started_local: str
    started_utc: str
    #: The incident the run worked on (``INC-<seq>``); ``incident show`` lists the run.
    incident: str | None = None
    finished_local: str | None = None
    finished_utc: str | None = None
    duration: str | None = None
    hosts: tuple[HostLine, ...] = ()
    changes: tuple[HostLine, ...] = ()
    failures: tuple[HostFailure, ...] = ()
    residual_risks: tuple[ResidualRisk, ...] = ()
    next_steps: tuple[str, ...] = ()
    summary: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    evidence_templates: tuple[str, ...] = ()
    proofs: tuple[Proof, ...] = ()
    details: tuple[tuple[str, str], ...] = ()
    refusal: str | None = None
    refusal_message: str | None = None
    #: The last proof as a checkpoint note (signed when the agency keeps a key), and the
    #: command that checks it; set when the log is written.
    signed: AgencyCheckpoint | None = None
    verify_command: str | None = None


def run_log_dir(var_dir: Path, run_id: str) -> Path:
    """Given the var directory and a run id, return the run's folder.

    Raise BadInput if the run id is not a safe folder name.
    """
    if not _RUN_ID_PATTERN.fullmatch(run_id):
        raise BadInput(f"run id {run_id!r} must be letters, digits, '.', '-' or '_'")
    return var_dir / RUNS_FOLDER / run_id


def render_run_log(
    started: Entry,
    finished: Entry | None,
    contract: Contract,
    var_dir: Path,
    *,
    secrets: SecretSet | None = None,
) -> RunLogFiles:
    """Given a run's ledger entries, the client's contract and the var directory, write its log.

    ``finished`` None renders the run as in progress. Payloads are masked
    again with ``secrets`` (and secret-named keys blanked) before rendering.
    Return the Markdown and HTML files written under :func:`run_log_dir`.
    Raise BadInput if the entries are not the start and the end of one run
    of the contract's client, or the run id is unsafe.
    """
    masking = secrets or SecretSet()
    view = make_run_view(started, finished, contract, masking)
    return _write_log(view, "run-log", var_dir)


def render_refusal_log(
    refused: Entry,
    contract: Contract,
    var_dir: Path,
    run_id: str,
    *,
    secrets: SecretSet | None = None,
) -> RunLogFiles:
    """Given a ``run-refused`` entry, the client's contract, the var directory and a run id,
    write the short log of what was refused and why.

    Return the Markdown and HTML files written under :func:`run_log_dir`.
    Raise BadInput if the entry is not a refusal for the contract's client,
    or the run id is unsafe.
    """
    masking = secrets or SecretSet()
    view = make_refusal_view(refused, contract, run_id, masking)
    return _write_log(view, "refusal-log", var_dir)


def make_run_view(
    started: Entry, finished: Entry | None, contract: Contract, secrets: SecretSet
) -> RunLogView:
    """Given a run's entries, the contract and the secrets to mask, return what its log shows.

    Raise BadInput if the entries are not the start and end of one run of the
    contract's client.
    """
    _require_entry(started, RUN_STARTED, contract)
    start = _parse_entry(started, secrets, _started_from_payload)
    zone = contract_timezone(contract)
    end: RunFinished | None = None
    if finished is not None:
        _require_entry(finished, RUN_FINISHED, contract)
        end = _parse_entry(finished, secrets, _finished_from_payload)
        if end.run_id != start.run_id or end.started_seq != started.seq:
            raise BadInput(
                f"entry {finished.seq} closes run {end.run_id} (started at seq "
                f"{end.started_seq}), not run {start.run_id} (seq {started.seq})"
            )
    check = start.check or (end is not None and end.check)
    hosts = _host_lines(start.hosts, end, check)
    proofs = [_proof("Start of the run (run-started)", started)]
    if finished is not None:
        proofs.append(_proof("End of the run (run-finished)", finished))
    state = IN_PROGRESS if end is None else str(end.outcome)
    return RunLogView(
        client_name=contract.display_name,
        owner=_owner(contract),
        run_id=start.run_id,
        action=start.action,
        action_text=action_text(start.action),
        state=state,
        state_text=STATE_TEXTS[state],
        check=check,
        emergency=start.emergency,
        overridden=start.overridden,
        reason=start.reason,
        ticket=start.ticket,
        incident=start.incident,
        window=start.window,
        actor=secrets.mask_text(started.actor),
        timezone=zone.key,
        started_local=format_local_time(started.at, zone),
        started_utc=_format_utc(started.at),
        finished_local=None if finished is None else _format_end(started.at, finished.at, zone),
        finished_utc=None if finished is None else _format_utc(finished.at),
        duration=None if end is None else format_seconds(end.duration_s),
        hosts=hosts,
        changes=tuple(line for line in hosts if line.result and line.result.changed_tasks),
        failures=_failures(hosts),
        residual_risks=() if end is None else end.residual_risks,
        next_steps=() if end is None else end.next_steps,
        summary="" if end is None else end.summary,
        evidence={} if end is None else end.evidence,
        evidence_templates=evidence_templates(start.action),
        proofs=tuple(proofs),
        details=_run_details(start),
    )


def make_refusal_view(
    refused: Entry, contract: Contract, run_id: str, secrets: SecretSet
) -> RunLogView:
    """Given a ``run-refused`` entry, the contract, a run id and the secrets to mask,
    return what its log shows.

    Raise BadInput if the entry is not a refusal for the contract's client.
    """
    _require_entry(refused, RUN_REFUSED, contract)
    refusal = _parse_entry(refused, secrets, _refused_from_payload)
    zone = contract_timezone(contract)
    return RunLogView(
        client_name=contract.display_name,
        owner=_owner(contract),
        run_id=run_id,
        action=refusal.action,
        action_text=action_text(refusal.action),
        state=REFUSED,
        state_text=STATE_TEXTS[REFUSED],
        check=refusal.check,
        emergency=refusal.emergency,
        overridden=None,
        reason=refusal.reason,
        ticket=refusal.ticket,
        incident=refusal.incident,
        window=None,
        actor=secrets.mask_text(refused.actor),
        timezone=zone.key,
        started_local=format_local_time(refused.at, zone),
        started_utc=_format_utc(refused.at),
        proofs=(_proof("The refusal (run-refused)", refused),),
        refusal=REFUSAL_TEXTS.get(refusal.refusal, f"of the rule {refusal.refusal}"),
        refusal_message=refusal.message,
    )


def action_text(action: str) -> ActionText:
    """Given an action name, return how it is named and explained to a client."""
    return ACTION_TEXTS.get(
        action, ActionText(action.replace("-", " ").capitalize(), "Maintenance work.")
    )


def evidence_templates(action: str) -> tuple[str, ...]:
    """Given an action, return the evidence partials to try, without their extension.

    The action's own partial comes first when the action is known; the generic
    key/value rendering always follows, as Jinja2 includes the first that exists.
    """
    own = (f"evidence/{action}",) if action in ACTIONS else ()
    return (*own, "evidence/generic")


def _owner(contract: Contract) -> str:
    """Return the business owner's name, or what a prospect lacks."""
    owner = contract.business_owner
    return owner.name if owner is not None else "no business owner named (prospect)"


def contract_timezone(contract: Contract) -> ZoneInfo:
    """Given a contract, return the client's time zone: its first window's, else UTC."""
    return ZoneInfo(contract.windows[0].timezone if contract.windows else "UTC")


def format_local_time(moment: datetime, zone: tzinfo) -> str:
    """Given an aware datetime and a time zone, return it as plain local text.

    For example ``Tuesday 5 May 2026, 23:04 CEST``.
    """
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M %Z}".strip()


def _format_end(start: datetime, end: datetime, zone: tzinfo) -> str:
    if start.astimezone(zone).date() == end.astimezone(zone).date():
        return f"{end.astimezone(zone):%H:%M %Z}"
    return format_local_time(end, zone)


def format_seconds(seconds: float) -> str:
    """Given a duration in seconds, return it in plain words, e.g. ``1 h 5 min``."""
    total = round(max(seconds, 0.0))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _format_utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _require_entry(entry: Entry, kind: str, contract: Contract) -> None:
    if entry.kind != kind:
        raise BadInput(f"ledger entry {entry.seq} is a {entry.kind} entry, not {kind}")
    if entry.client != contract.name:
        raise BadInput(
            f"ledger entry {entry.seq} belongs to client {entry.client}, not {contract.name}"
        )


def _parse_entry(
    entry: Entry, secrets: SecretSet, build: Callable[[Mapping[str, Any]], _Record]
) -> _Record:
    try:
        return build(secrets.mask_data(entry.payload))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BadInput(
            f"ledger entry {entry.seq} is not a valid {entry.kind} record: {error!r}"
        ) from None


def _started_from_payload(data: Mapping[str, Any]) -> _Start:
    return _Start(
        run_id=str(data["run_id"]),
        action=str(data["action"]),
        check=bool(data["check"]),
        emergency=bool(data["emergency"]),
        reason=str(data.get("reason") or ""),
        ticket=data.get("ticket"),
        window=data.get("window"),
        hosts=tuple(str(host) for host in data.get("hosts") or ()),
        limit=data.get("limit"),
        playbook=str(data.get("playbook") or ""),
        revision=str(data.get("revision") or ""),
        versions=dict(data.get("versions") or {}),
        controller=str(data.get("controller") or ""),
        overridden=data.get("overridden"),
        incident=_incident(data),
    )


def _finished_from_payload(data: Mapping[str, Any]) -> RunFinished:
    return RunFinished(
        run_id=str(data["run_id"]),
        action=str(data["action"]),
        check=bool(data["check"]),
        outcome=Outcome(data["outcome"]),
        started_seq=int(data["started_seq"]),
        duration_s=float(data.get("duration_s", 0.0)),
        hosts=tuple(host_result_from_payload(item) for item in data.get("hosts", ())),
        evidence=dict(data.get("evidence") or {}),
        residual_risks=tuple(
            ResidualRisk(host=item.get("host"), risk=item["risk"], reason=item.get("reason", ""))
            for item in data.get("residual_risks", ())
        ),
        next_steps=tuple(str(step) for step in data.get("next_steps", ())),
        summary=str(data.get("summary") or ""),
    )


def _refused_from_payload(data: Mapping[str, Any]) -> RunRefused:
    return RunRefused(
        action=str(data["action"]),
        refusal=Refusal(data["refusal"]),
        message=str(data.get("message") or ""),
        check=bool(data.get("check", False)),
        emergency=bool(data.get("emergency", False)),
        reason=str(data.get("reason") or ""),
        ticket=data.get("ticket"),
        incident=_incident(data),
    )


def _incident(data: Mapping[str, Any]) -> str | None:
    named = data.get("incident")
    return named if isinstance(named, str) else None


def _host_label(status: str, check: bool) -> str:
    if check and status in DRY_RUN_HOST_STATUS_TEXTS:
        return DRY_RUN_HOST_STATUS_TEXTS[status]
    return HOST_STATUS_TEXTS.get(status, status)


def _host_lines(
    targets: Iterable[str], finished: RunFinished | None, check: bool
) -> tuple[HostLine, ...]:
    if finished is None:
        return tuple(
            HostLine(host, IN_PROGRESS, HOST_STATUS_TEXTS[IN_PROGRESS]) for host in targets
        )
    results = {result.host: result for result in finished.hosts}
    # Targeted hosts first, in the order the run named them, then any host that
    # only the results name.
    order = list(dict.fromkeys([*targets, *results]))
    lines = []
    for host in order:
        result = results.get(host)
        status = HostStatus.UNKNOWN if result is None else result.status
        lines.append(HostLine(host, str(status), _host_label(status, check), result))
    return tuple(lines)


def _failures(hosts: Iterable[HostLine]) -> tuple[HostFailure, ...]:
    failures: list[HostFailure] = []
    for line in hosts:
        result = line.result
        if result is None:
            continue
        tasks: tuple[FailedTask, ...] = result.failed_tasks
        if not tasks and result.status in (HostStatus.FAILED, HostStatus.UNREACHABLE):
            tasks = (FailedTask(task=line.label, message=result.note),)
        failures.extend(HostFailure(line.host, task.task, task.message) for task in tasks)
    return tuple(failures)


def _proof(label: str, entry: Entry) -> Proof:
    return Proof(label=label, seq=entry.seq, hash=entry.hash, at=_format_utc(entry.at))


def _run_details(start: _Start) -> tuple[tuple[str, str], ...]:
    rows = [
        ("Run id", start.run_id),
        ("Playbook", start.playbook),
        ("Revision", start.revision),
        ("Host limit", start.limit or ""),
        ("Controller", start.controller),
        *((f"Version of {name}", str(version)) for name, version in sorted(start.versions.items())),
    ]
    return tuple((label, value) for label, value in rows if value)


def _label(key: object) -> str:
    text = str(key).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _evidence_rows(value: Any, depth: int = 0) -> list[tuple[int, str, str | None]]:
    """Given evidence data, return rows ``(depth, label, value)``; value None opens a group."""
    rows: list[tuple[int, str, str | None]] = []
    if isinstance(value, Mapping):
        items: Iterable[tuple[object, Any]] = sorted(value.items(), key=lambda item: str(item[0]))
    elif isinstance(value, list | tuple):
        items = ((f"#{index}", item) for index, item in enumerate(value, start=1))
    else:
        return [(depth, "Value", _scalar_text(value))]
    for key, item in items:
        label = key if isinstance(key, str) and key.startswith("#") else _label(key)
        if isinstance(item, Mapping) or (
            isinstance(item, list | tuple) and any(isinstance(x, Mapping | list) for x in item)
        ):
            rows.append((depth, label, None))
            rows.extend(_evidence_rows(item, depth + 1))
        else:
            rows.append((depth, label, _scalar_text(item)))
    return rows


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "not recorded"
    if isinstance(value, list | tuple):
        return ", ".join(_scalar_text(item) for item in value) if value else "none"
    return str(value)


def _package_label(value: Any) -> str:
    if isinstance(value, Mapping):
        name = str(value.get("name", "?"))
        version = value.get("version")
        return f"{name} {version}" if version else name
    return str(value)


def _port_label(value: Any) -> str:
    if not isinstance(value, Mapping):
        return str(value)
    port = f"{value.get('port', '?')}/{value.get('protocol', 'tcp')}"
    address = value.get("address")
    process = value.get("process")
    text = f"{port} on {address}" if address else port
    return f"{text} ({process})" if process else text


# Emphasis characters (* and _) are left alone: they can only restyle text, and
# escaping them would make masked secrets and snake_case names hard to read.
_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]<>|#~])")


def escape_markdown(value: object) -> str:
    """Given a value, return its text safe inside a Markdown line.

    Characters that would start markup (links, images, HTML, tables, code,
    headings) are backslash-escaped and line breaks become spaces, so that
    recorded text can never change the document's structure.
    """
    if isinstance(value, jinja2.Undefined):
        return ""
    text = " ".join(str(value).splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _finalize_markdown(value: object) -> object:
    return value if isinstance(value, Markup) else escape_markdown(value)


def _longest_run(text: str, char: str) -> int:
    return max((len(run) for run in re.findall(f"{re.escape(char)}+", text)), default=0)


def markdown_code(value: object) -> Markup:
    """Given a value, return it as a Markdown code span that no backtick in it can close."""
    text = " ".join(str(value).splitlines())
    fence = "`" * (_longest_run(text, "`") + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return Markup(f"{fence}{padding}{text}{padding}{fence}")


def markdown_block(value: object, indent: int = 0) -> Markup:
    """Given text, return it as a fenced Markdown code block that nothing in it can close."""
    text = str(value).rstrip("\n") or " "
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    prefix = " " * indent
    lines = [fence, *text.splitlines(), fence]
    return Markup("\n".join(prefix + line for line in lines))


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


_FILTERS: dict[str, Callable[..., Any]] = {
    "label": _label,
    "evidence_rows": _evidence_rows,
    "scalar": _scalar_text,
    "package": _package_label,
    "port": _port_label,
    "seconds": format_seconds,
}


@cache
def _environment(markdown: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("webmg_ops.reports", "templates"),
        # Evidence comes from many actions; a key one of them lacks must read
        # "not recorded", not stop the log.
        undefined=jinja2.ChainableUndefined,
        extensions=["jinja2.ext.do"],
        autoescape=not markdown,
        finalize=_finalize_markdown if markdown else None,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(_FILTERS)
    # Jinja's own "sequence" test also accepts undefined values and strings.
    environment.tests["list"] = _is_list
    if markdown:
        environment.filters["code"] = markdown_code
        environment.filters["block"] = markdown_block
    return environment


def render_text(view: RunLogView, template: str, markdown: bool) -> str:
    """Given a log's view, a template name without extension and the format, return the text.

    ``markdown`` False renders HTML, in which every value is escaped.
    """
    extension = "md" if markdown else "html"
    return (
        _environment(markdown)
        .get_template(f"{template}.{extension}.j2")
        .render(
            log=view,
            evidence=view.evidence,
            evidence_partials=[f"{name}.{extension}.j2" for name in view.evidence_templates],
        )
    )


def _write_private(path: Path, text: str) -> None:
    # Written to a private temporary file then renamed, so a reader never sees
    # half a log and the file is never readable by others, even for a moment.
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(text)
    temporary = Path(handle.name)
    try:
        temporary.chmod(FILE_MODE)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _write_log(view: RunLogView, template: str, var_dir: Path) -> RunLogFiles:
    folder = run_log_dir(var_dir, view.run_id)
    folder.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    # mkdir's mode passes through the umask and leaves an existing folder as it was.
    folder.chmod(DIRECTORY_MODE)
    files = RunLogFiles(markdown=folder / MARKDOWN_FILE, html=folder / HTML_FILE)
    if view.proofs:
        # The record's last entry as a signed note: a client keeping this log can check
        # that the history up to its run is still the one the agency signed.
        last = view.proofs[-1]
        signed = agency_checkpoint(var_dir, Checkpoint(last.seq, last.hash), strict=False)
        note_file = folder / CHECKPOINT_FILE
        _write_private(note_file, signed.note.text)
        view = replace(view, signed=signed, verify_command=signed.verify_command(note_file))
    _write_private(files.markdown, render_text(view, template, markdown=True))
    _write_private(files.html, render_text(view, template, markdown=False))
    return files
