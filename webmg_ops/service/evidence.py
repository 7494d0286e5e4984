"""Evidence of an incident: what is read on its hosts, and the entry that keeps it.

Pure: no I/O and no clock. ``incident collect`` runs the fixed, read-only
:data:`PROBES` on the incident's host (every host of the client's inventory when
it names none) and hands what each host gave to :func:`decide_evidence`, which
turns it into one ``incident-evidence`` entry attached to the incident.

Nothing a host prints is trusted. Its bytes are decoded with undecodable bytes
replaced, masked with the client's secrets, stripped of every control and
format character but line ends and tabs (no terminal escape, no bidirectional
override reaches an operator's screen), then cut to :data:`KEPT_STDOUT` /
:data:`KEPT_STDERR` characters: a cut is said in the command's ``notes``. The
reasons a host gave none (unreachable, host key unknown or changed) are
treated the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webmg_ops.errors import BadInput
from webmg_ops.ledger import NewEntry
from webmg_ops.secrets import SecretSet
from webmg_ops.service.incidents import CLOSED_STATE, EVIDENCE, Incident

HEAD = "head"
TAIL = "tail"


@dataclass(frozen=True)
class Probe:
    """One read-only command: its name, the command line (a constant), which end of a
    long output is kept (``head``, or ``tail`` for logs whose newest lines come last),
    and what it shows."""

    name: str
    command: str
    keep: str
    shows: str


#: What is read on each host, in this order. Constants only: nothing typed by a user or
#: sent by a host is ever part of a command. ``sudo -n`` (never a password prompt) where
#: only root sees everything: the whole journal, the processes behind each port.
PROBES: tuple[Probe, ...] = (
    Probe(
        "failed-units",
        "systemctl --failed --no-legend --plain --no-pager",
        HEAD,
        "systemd units in the failed state",
    ),
    Probe(
        "errors",
        "sudo -n journalctl -p err -n 200 --no-pager --since -24h -o short-iso",
        TAIL,
        "the last 200 journal entries of priority err or worse, of the last 24 h",
    ),
    Probe("disk", "df -hP", HEAD, "file system usage"),
    Probe("memory", "free -m", HEAD, "memory and swap in MiB"),
    Probe("load", "cat /proc/loadavg; uptime", HEAD, "load averages and uptime"),
    Probe(
        "packages",
        "tail -n 50 /var/log/dpkg.log",
        TAIL,
        "the last 50 lines of the package log (installs, upgrades, removals)",
    ),
    Probe("ports", "sudo -n ss -tlnpH", HEAD, "listening TCP sockets and their processes"),
)

#: Bytes read of one stream of a command before it is stopped: far above what the
#: probes print on a sound host, a bound on what a hostile one can send.
READ_LIMIT = 256 * 1024
#: Characters kept of a command's output, and of its error output, in the entry.
KEPT_STDOUT = 16_000
KEPT_STDERR = 4_000
#: Characters kept of the reason a host or a command gave nothing.
KEPT_REASON = 500

# Command states.
OK = "ok"
FAILED = "failed"
TIMED_OUT = "timed-out"
CUT = "cut"
LOST = "lost"
NOT_RUN = "not-run"

# Host states.
COLLECTED = "collected"
INCOMPLETE = "incomplete"
UNREACHABLE = "unreachable"
HOST_KEY_UNKNOWN = "host-key-unknown"
HOST_KEY_CHANGED = "host-key-changed"

#: Command states in which the command ran to its end on the host.
_ENDED = frozenset({OK, FAILED})

#: What replaces a character that could act on a terminal.
REPLACEMENT = "\ufffd"

#: Kept as they are: line ends and tabs. Every other control or format character
#: (C0, DEL, C1, bidirectional overrides, zero-width marks) is replaced.
_KEPT_CONTROLS = frozenset("\n\t")
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_CARRIAGE_RETURNS = re.compile(r"\r\n?")


@dataclass(frozen=True)
class ProbeRun:
    """What one probe gave on a host, as read (raw bytes, not yet trusted).

    ``status`` is its exit status, None when it did not end: ``timed_out`` past its
    timeout, ``cut`` after more than :data:`READ_LIMIT` bytes, or ``lost`` (the reason)
    when the session ended under it; ``run`` is False for a probe never started
    because the session was lost before.
    """

    probe: Probe
    status: int | None
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    cut: bool = False
    lost: str | None = None
    run: bool = True


@dataclass(frozen=True)
class HostCollection:
    """What one host gave: its probes' runs, or why it gave none.

    ``problem`` is None when a session was opened, else :data:`UNREACHABLE`,
    :data:`HOST_KEY_UNKNOWN` or :data:`HOST_KEY_CHANGED` with its ``reason``.
    """

    host: str
    runs: tuple[ProbeRun, ...] = ()
    problem: str | None = None
    reason: str | None = None


# --- hostile text ----------------------------------------------------------------


def neutralise(text: str) -> str:
    """Given text from a host, return it with carriage returns made line ends and every
    control or format character other than a line end or a tab replaced by
    :data:`REPLACEMENT`: printed, it cannot move the cursor, recolour, retitle or
    reorder anything on a terminal."""
    text = _CARRIAGE_RETURNS.sub("\n", text)
    return "".join(
        REPLACEMENT
        if char not in _KEPT_CONTROLS and unicodedata.category(char) in _CONTROL_CATEGORIES
        else char
        for char in text
    )


def _cut(text: str, limit: int, keep: str) -> tuple[str, bool]:
    """Given text, a number of characters and which end to keep, return the text cut to
    that many at a line boundary where one is near, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    if keep == TAIL:
        kept = text[-limit:]
        line_start = kept.find("\n")
        # Start on a whole line unless the only break is far in.
        return (kept[line_start + 1 :] if 0 <= line_start < limit // 4 else kept), True
    kept = text[:limit]
    line_end = kept.rfind("\n")
    return (kept[: line_end + 1] if line_end >= limit - limit // 4 else kept), True


def clean(raw: bytes, secrets: SecretSet, limit: int, keep: str = HEAD) -> tuple[str, bool]:
    """Given bytes a host sent, the client's secrets, a number of characters and which end
    to keep, return them as safe text: decoded (undecodable bytes replaced), masked,
    neutralised (:func:`neutralise`), then cut to ``limit`` characters; and whether it
    was cut.

    Masked before it is cut, so that a cut never leaves part of a secret behind.
    """
    text = secrets.mask_text(raw.decode("utf-8", errors="replace"))
    return _cut(neutralise(text), limit, keep)


def clean_reason(reason: str, secrets: SecretSet) -> str:
    """Given why a host or a command gave nothing (an error's text, which may quote the
    host), return it masked, neutralised and bounded."""
    text, _cut_off = clean(reason.encode("utf-8", errors="replace"), secrets, KEPT_REASON)
    return text


# --- which hosts ---------------------------------------------------------------


def refuse_closed(incident: Incident) -> None:
    """Given an incident, return if evidence may be attached to it.

    Raise BadInput if it is closed: its record is final, and evidence read now would
    describe the hosts after the incident, not during it.
    """
    if incident.state == CLOSED_STATE:
        raise BadInput(
            f"{incident.id} is closed: evidence read now would not be the incident's, "
            "and a closed incident's record is final (open a new incident)"
        )


def hosts_to_collect(incident: Incident, inventory: Iterable[str]) -> list[str]:
    """Given an incident and its client's inventory hosts, return the hosts to read: the
    incident's host, or every host of the inventory (sorted) when it names none.

    Raise BadInput if the incident's host is no longer in the inventory, or the
    inventory has no host.
    """
    hosts = sorted(set(inventory))
    if incident.host is not None:
        if incident.host not in hosts:
            known = ", ".join(hosts) or "none"
            raise BadInput(
                f"{incident.id} names host {incident.host!r}, which is no longer in "
                f"{incident.client}'s inventory (hosts: {known})"
            )
        return [incident.host]
    if not hosts:
        raise BadInput(f"{incident.client}'s inventory has no host to collect evidence from")
    return hosts


# --- the entry -------------------------------------------------------------------


def _probe_state(run: ProbeRun) -> str:
    if not run.run:
        return NOT_RUN
    if run.lost is not None:
        return LOST
    if run.timed_out:
        return TIMED_OUT
    if run.cut:
        return CUT
    return OK if run.status == 0 else FAILED


def _stream(
    raw: bytes, secrets: SecretSet, limit: int, keep: str, name: str, notes: list[str]
) -> str:
    text, was_cut = clean(raw, secrets, limit, keep)
    if was_cut:
        end = "last" if keep == TAIL else "first"
        notes.append(f"{name} cut: the {end} {len(text)} characters kept")
    return text


def _whole_lines(raw: bytes) -> bytes:
    """Given bytes read from a stream, return them up to their last line end."""
    return raw[: raw.rfind(b"\n") + 1]


def probe_document(run: ProbeRun, secrets: SecretSet) -> dict[str, Any]:
    """Given one probe's run and the client's secrets, return it as JSON-ready data:
    name, command, state, exit status, output and error output (safe text, see
    :func:`clean`; whole lines only for a command that did not end) and notes saying
    what was cut or why it did not end."""
    state = _probe_state(run)
    notes: list[str] = []
    if state == TIMED_OUT:
        notes.append("did not finish within its timeout: stopped, output so far kept")
    elif state == CUT:
        notes.append(f"printed more than {READ_LIMIT} bytes: stopped, output so far kept")
    elif state == LOST:
        notes.append(f"session lost: {clean_reason(run.lost or '', secrets)}")
    elif state == NOT_RUN:
        notes.append("not run: the session to the host was lost before")
    raw_stdout, raw_stderr = run.stdout, run.stderr
    if state not in _ENDED:
        # Read up to an arbitrary byte: its last, unfinished line may hold the first
        # characters of a secret, which no mask recognises. It is dropped.
        raw_stdout, raw_stderr = _whole_lines(raw_stdout), _whole_lines(raw_stderr)
        if (raw_stdout, raw_stderr) != (run.stdout, run.stderr):
            notes.append("its unfinished last line was dropped")
    stdout = _stream(raw_stdout, secrets, KEPT_STDOUT, run.probe.keep, "output", notes)
    stderr = _stream(raw_stderr, secrets, KEPT_STDERR, run.probe.keep, "error output", notes)
    return {
        "name": run.probe.name,
        "command": run.probe.command,
        "state": state,
        "exit_status": run.status,
        "stdout": stdout,
        "stderr": stderr,
        "notes": notes,
    }


def host_document(collection: HostCollection, secrets: SecretSet) -> dict[str, Any]:
    """Given what one host gave and the client's secrets, return it as JSON-ready data:
    host, state (collected, incomplete, unreachable, host-key-unknown, host-key-changed),
    reason, and each probe's document."""
    if collection.problem is not None:
        return {
            "host": collection.host,
            "state": collection.problem,
            "reason": clean_reason(collection.reason or "", secrets),
            "commands": [],
        }
    commands = [probe_document(run, secrets) for run in collection.runs]
    ended = all(command["state"] in _ENDED for command in commands)
    return {
        "host": collection.host,
        "state": COLLECTED if ended else INCOMPLETE,
        "reason": None
        if ended
        else ", ".join(
            f"{command['name']} {command['state']}"
            for command in commands
            if command["state"] not in _ENDED
        ),
        "commands": commands,
    }


def summarise(hosts: Sequence[Mapping[str, Any]]) -> str:
    """Given the hosts' documents, return one line: how many were collected, and each
    other host with its state."""
    collected = sum(1 for host in hosts if host["state"] == COLLECTED)
    others = [f"{host['host']} {host['state']}" for host in hosts if host["state"] != COLLECTED]
    line = f"{collected} of {len(hosts)} host(s) collected"
    return f"{line}; {', '.join(others)}" if others else line


def decide_evidence(
    incident: Incident,
    collections: Sequence[HostCollection],
    secrets: SecretSet,
    *,
    by: str | None,
    now: datetime,
) -> NewEntry:
    """Given an incident, what each of its hosts gave (in the order asked), the client's
    secrets, who collected and when, return the ``incident-evidence`` entry: each host's
    document, a one-line summary, and whether every host gave every output (``complete``).

    Raise BadInput if the incident is closed (nothing written).
    """
    refuse_closed(incident)
    hosts = [host_document(collection, secrets) for collection in collections]
    payload = {
        "incident": incident.seq,
        "summary": summarise(hosts),
        "complete": all(host["state"] == COLLECTED for host in hosts),
        "hosts": hosts,
    }
    # Masked once more as data: a secret-named key would be masked whatever its value.
    return NewEntry(EVIDENCE, incident.client, secrets.mask_data(payload), actor=by, at=now)
