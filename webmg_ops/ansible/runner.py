"""The one module that talks to ansible-runner.

Given a playbook, a client's inventory and the run's settings, it builds
the job (a private data directory per run, ``ident`` = run id), streams
Ansible's events into per-host results as they arrive (never re-reading
files from disk), and returns a typed result. Secrets are kept out of argv
(extra vars travel in a 0600 file), out of ansible-runner's env files
(``suppress_env_files``) and out of the artifacts it keeps: events and raw
output are never written, the command file (which holds the environment)
is removed as soon as the play starts, and the output kept for engineers is
built from the structured events after masking them, so that no formatter
(YAML folding a long line, JSON escaping) runs before the secrets are gone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from webmg_ops.ansible.connection import ansible_trust_environment
from webmg_ops.ansible.inventory import CLIENT_ANSIBLE_CFG
from webmg_ops.ansible.strategy import strategy_environment
from webmg_ops.errors import EnvironmentProblem
from webmg_ops.process import process_alive
from webmg_ops.runs.records import FailedTask, HostResult, HostStatus
from webmg_ops.secrets import SecretSet

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = PROJECT_ROOT / "playbooks"
ROLES = PROJECT_ROOT / "roles"
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"

#: The key under which playbooks publish evidence with ``set_stats``
#: (``aggregate: true``, one sub-key per host).
EVIDENCE_KEY = "webmg_evidence"

#: Where a run's ansible-playbook PID is written while it runs, so a later
#: command can end what a crashed orchestrator left behind.
PID_FILE = "ansible.pid"

#: The output kept for engineers, in the run's private directory: built from masked events.
OUTPUT_FILE = "ansible-output.masked.txt"

#: Where the path of a run's SSH control folder is written, in its private directory,
#: so a later command can end the SSH masters of a crashed run and remove the folder.
CONTROL_DIR_FILE = "control-dir"

#: What a run leaves in its private directory that can hold unmasked secrets.
RAW_RUN_FILES = ("env", "extravars.json", "tmp")
#: The same, in ansible-runner's artifact folder of the run.
RAW_ARTIFACT_FILES = ("command", "stdout", "stderr", "job_events", "fact_cache")

#: How long a stopped play may take to end its workers and itself before it is killed.
STOP_TIMEOUT_SECONDS = 10.0

#: The umask while a play runs: of this process, ansible-runner and ansible-playbook.
PRIVATE_UMASK = 0o077

#: The prefix of SSH control folders in the temporary directory.
CONTROL_DIR_PREFIX = "webmg-cp-"

#: How each result event is introduced in the kept output, as Ansible's own display does.
RESULT_LABELS: dict[str, str] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipping",
    "runner_item_on_ok": "ok (item)",
    "runner_item_on_failed": "failed (item)",
    "runner_item_on_skipped": "skipping (item)",
    "runner_retry": "retrying",
    "runner_on_async_failed": "failed (async)",
}

#: Events that carry only Ansible's formatted text, no structured result.
TEXT_EVENTS = frozenset({"verbose", "warning", "deprecated", "error", "debug", "system_warning"})

#: ansible-runner's settings, written to ``env/settings`` in the private directory:
#: ansible-runner 2.4 reads ``suppress_output_file`` from that file only (the keyword
#: argument is overwritten when the run is prepared). Ansible's raw output is
#: formatted before any masking could happen: it is never written.
RUNNER_SETTINGS: Mapping[str, Any] = {"suppress_output_file": True}

_TERMINAL_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Job:
    """Everything one ansible-playbook run needs."""

    run_id: str
    playbook: Path
    inventory: Path
    private_dir: Path
    limit: str | None = None
    tags: str | None = None
    check: bool = False
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    vault_password_file: Path | None = None
    ansible_cfg: Path = ANSIBLE_CFG
    environment: Mapping[str, str] = field(default_factory=dict)
    forks: int | None = None
    verbosity: int = 0
    fact_cache: Path | None = None


def ansible_cfg_for(client_dir: Path) -> Path:
    """Given a client folder, return the ansible.cfg its Ansible runs use: the client's own
    if it has one, else the project's tuned one.

    A client's file was checked when the client was loaded: it may only tune speed.
    The trust settings are applied over it by the runner's environment.
    """
    own = client_dir / CLIENT_ANSIBLE_CFG
    return own if own.is_file() else ANSIBLE_CFG


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress display."""

    hosts_total: int
    hosts_done: int
    task: str
    failures: int


@dataclass(frozen=True)
class PlaybookResult:
    """How an ansible-playbook run ended."""

    status: str
    rc: int
    hosts: tuple[HostResult, ...]
    evidence: Mapping[str, Any]
    canceled: bool
    duration_s: float

    @property
    def ok(self) -> bool:
        """Return whether the play ran to the end without a failed or unreachable host."""
        return (
            self.rc == 0
            and not self.canceled
            and all(host.status.carried_out for host in self.hosts)
        )


def default_forks() -> int:
    """Return the forks for this machine: enough parallel SSH sessions, bounded by CPUs."""
    return max(5, min(50, (os.cpu_count() or 1) * 10))


@dataclass
class _HostTally:
    changed_tasks: list[str] = field(default_factory=list)
    failed_tasks: list[FailedTask] = field(default_factory=list)
    unreachable: str = ""
    duration_s: float = 0.0


class EventCollector:
    """Folds Ansible's events into per-host results, masking every message.

    Given the hosts expected and the secrets to mask, ``handle`` takes each
    event as ansible-runner streams it.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        secrets: SecretSet,
        on_progress: Callable[[Progress], None] | None = None,
        on_pid: Callable[[int], None] | None = None,
    ) -> None:
        self.hosts = list(hosts)
        self.secrets = secrets
        self.on_progress = on_progress
        self.on_pid = on_pid
        self.tallies: dict[str, _HostTally] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.evidence: dict[str, Any] = {}
        self.task = ""
        self.failed_hosts: set[str] = set()
        self.pid: int | None = None
        self.output: list[str] = []
        self._lock = threading.Lock()

    def _tally(self, host: str) -> _HostTally:
        return self.tallies.setdefault(host, _HostTally())

    def _message(self, result: Mapping[str, Any]) -> str:
        """Return what an engineer needs from a failed result: message, command, stderr."""
        # Masked as data first: joining an argv or dumping JSON must not hide a secret.
        result = self.secrets.mask_data(json.loads(json.dumps(dict(result), default=str)))
        parts = []
        for key, label in (
            ("msg", ""),
            ("cmd", "command: "),
            ("stderr", "stderr: "),
            ("module_stderr", "stderr: "),
            ("reason", ""),
        ):
            value = result.get(key)
            if not value:
                continue
            if isinstance(value, list):
                value = " ".join(str(item) for item in value)
            elif not isinstance(value, str):
                value = json.dumps(value, default=str)
            parts.append(f"{label}{value.strip()}")
        if "rc" in result and result["rc"] not in (0, None):
            parts.append(f"exit status {result['rc']}")
        text = "; ".join(parts) or "failed"
        return self.secrets.mask_text(text)[:2000]

    def handle(self, event: Mapping[str, Any]) -> bool:
        """Given one runner event, update the tallies; return False so it is not kept on disk."""
        with self._lock:
            self._handle(event)
            self._keep(event)
        return False

    def _keep(self, event: Mapping[str, Any]) -> None:
        """Given one runner event, add its masked lines to the kept output.

        Results are masked as data and only then written as one line of JSON:
        nothing is folded or escaped before the secrets are gone.
        """
        kind = str(event.get("event", ""))
        data: Mapping[str, Any] = event.get("event_data") or {}
        if kind in RESULT_LABELS:
            result = json.loads(json.dumps(data.get("res") or {}, default=str))
            masked = json.dumps(self.secrets.mask_data(result), sort_keys=True, ensure_ascii=False)
            host = self.secrets.mask_text(str(data.get("host", "")))
            self.output.append(f"{RESULT_LABELS[kind]}: [{host}] => {masked}")
        elif kind == "playbook_on_play_start":
            name = data.get("play") or data.get("name") or ""
            self.output.append(f"PLAY [{self.secrets.mask_text(str(name))}]")
        elif kind == "playbook_on_task_start":
            self.output.append(f"TASK [{self.secrets.mask_text(str(data.get('task', '')))}]")
        elif kind == "playbook_on_stats":
            self.output.extend(self._recap())
        elif kind in TEXT_EVENTS:
            text = _TERMINAL_ESCAPES.sub("", str(event.get("stdout", ""))).strip()
            if text:
                self.output.append(self.secrets.mask_text(text))

    def _recap(self) -> list[str]:
        lines = ["PLAY RECAP"]
        for host, counts in sorted(self.stats.items()):
            numbers = " ".join(f"{name}={count}" for name, count in sorted(counts.items()))
            lines.append(f"{self.secrets.mask_text(host)}: {numbers}")
        return lines

    def output_text(self) -> str:
        """Return the kept output: masked, one line per result."""
        with self._lock:
            return "".join(f"{line}\n" for line in self.output)

    def _handle(self, event: Mapping[str, Any]) -> None:
        if self.pid is None and isinstance(event.get("pid"), int):
            self.pid = int(event["pid"])
            if self.on_pid:
                self.on_pid(self.pid)
        kind = event.get("event", "")
        data: Mapping[str, Any] = event.get("event_data") or {}
        host = str(data.get("host", ""))
        result: Mapping[str, Any] = data.get("res") or {}
        task = self.secrets.mask_text(str(data.get("task", "")))
        if kind == "playbook_on_task_start":
            self.task = task
        elif kind == "runner_on_ok" and host:
            tally = self._tally(host)
            tally.duration_s += float(data.get("duration") or 0)
            if result.get("changed"):
                tally.changed_tasks.append(task)
        elif kind == "runner_on_failed" and host:
            tally = self._tally(host)
            tally.duration_s += float(data.get("duration") or 0)
            if not data.get("ignore_errors"):
                tally.failed_tasks.append(FailedTask(task=task, message=self._message(result)))
                self.failed_hosts.add(host)
        elif kind == "runner_on_unreachable" and host:
            self._tally(host).unreachable = self._message(result)
            self.failed_hosts.add(host)
        elif kind == "playbook_on_stats":
            for name in ("ok", "changed", "failures", "dark", "skipped", "ignored", "rescued"):
                for stat_host, count in (data.get(name) or {}).items():
                    self.stats.setdefault(stat_host, {})[name] = int(count)
            custom = (data.get("artifact_data") or {}).get(EVIDENCE_KEY) or {}
            self.evidence = self.secrets.mask_data(dict(custom))
        if self.on_progress and kind in (
            "playbook_on_task_start",
            "runner_on_failed",
            "runner_on_unreachable",
            "playbook_on_stats",
        ):
            done = len(self.stats) if kind == "playbook_on_stats" else len(self.failed_hosts)
            self.on_progress(Progress(len(self.hosts), done, self.task, len(self.failed_hosts)))

    def results(self) -> tuple[HostResult, ...]:
        """Return one result per expected host, in the order given."""
        results = []
        for host in self.hosts:
            stats = self.stats.get(host, {})
            tally = self.tallies.get(host, _HostTally())
            if tally.unreachable or stats.get("dark"):
                status = HostStatus.UNREACHABLE
            elif tally.failed_tasks or stats.get("failures"):
                status = HostStatus.FAILED
            elif host not in self.stats:
                status = HostStatus.UNKNOWN
            elif stats.get("changed"):
                status = HostStatus.CHANGED
            else:
                status = HostStatus.OK
            results.append(
                HostResult(
                    host=host,
                    status=status,
                    ok=stats.get("ok", 0),
                    changed=stats.get("changed", 0),
                    failed=stats.get("failures", 0),
                    skipped=stats.get("skipped", 0),
                    unreachable=stats.get("dark", 0),
                    changed_tasks=tuple(dict.fromkeys(tally.changed_tasks)),
                    failed_tasks=tuple(tally.failed_tasks),
                    duration_s=round(tally.duration_s, 3),
                    note=tally.unreachable,
                )
            )
        return tuple(results)


def write_private(path: Path, text: str) -> None:
    """Given a path and text, write it readable by the owner only (0600 in a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _environment(job: Job, control_dir: Path) -> dict[str, str]:
    environment = {
        "ANSIBLE_CONFIG": str(job.ansible_cfg),
        "ANSIBLE_ROLES_PATH": str(ROLES),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_LOCAL_TEMP": str(job.private_dir / "tmp"),
    }
    environment.update(job.environment)
    # The strategy is the engine's (its plugins' folder is no ansible.cfg's to name).
    environment.update(strategy_environment(job.ansible_cfg, control_dir))
    # Trust settings last, over any ansible.cfg and any other environment (see connection).
    environment.update(ansible_trust_environment(job.inventory.parent, ANSIBLE_CFG))
    return environment


def _cmdline(job: Job, extra_vars_file: Path | None) -> str:
    parts = []
    if job.check:
        parts += ["--check", "--diff"]
    if job.vault_password_file is not None:
        parts += ["--vault-password-file", str(job.vault_password_file)]
    if extra_vars_file is not None:
        parts += ["-e", f"@{extra_vars_file}"]
    return " ".join(parts)


#: What makes a folder unfit to hold SSH control sockets: another local user
#: could then connect through a master, or swap a socket for their own.
_UNSAFE_FOLDER_CHECKS: tuple[tuple[Callable[[os.stat_result], bool], str], ...] = (
    (lambda info: stat.S_ISLNK(info.st_mode), "is a symbolic link"),
    (lambda info: not stat.S_ISDIR(info.st_mode), "is not a folder"),
    (lambda info: info.st_uid != os.geteuid(), "is owned by uid {uid}, not by uid {euid}"),
    (lambda info: bool(info.st_mode & 0o077), "is open to group or others (mode {mode:04o})"),
)


def unsafe_folder_reason(path: Path) -> str | None:
    """Given a path, return why it is not a folder private to this user, or None if it is.

    A private folder is a real folder (not a symbolic link) owned by the
    effective user, with no permission for group or others.
    """
    try:
        info = path.lstat()
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    values = {"uid": info.st_uid, "euid": os.geteuid(), "mode": stat.S_IMODE(info.st_mode)}
    return next(
        (reason.format(**values) for check, reason in _UNSAFE_FOLDER_CHECKS if check(info)),
        None,
    )


def check_private_folder(path: Path) -> Path:
    """Given a folder that must be this user's alone, return it.

    Raise EnvironmentProblem, naming the folder and what is wrong, if it is a
    symbolic link, not a folder, owned by another user or open to group or others.
    """
    reason = unsafe_folder_reason(path)
    if reason is not None:
        raise EnvironmentProblem(f"SSH control folder {path} {reason}: refusing to use it")
    return path


def create_control_dir(private_dir: Path) -> Path:
    """Given a run's private directory, create its SSH control folder and return it.

    A socket path must stay under 108 bytes, so the folder is a short one in
    the temporary directory; its name is random (``mkdtemp``), so no other
    local user can create it first, and it is checked before use. Its path is
    recorded in the private directory for :func:`end_run_processes`.
    Raise EnvironmentProblem if the folder is not private to this user.
    """
    folder = check_private_folder(Path(tempfile.mkdtemp(prefix=CONTROL_DIR_PREFIX)))
    write_private(private_dir / CONTROL_DIR_FILE, str(folder))
    return folder


def control_path_dir(private_dir: Path) -> Path | None:
    """Given a run's private directory, return its recorded SSH control folder, if any."""
    record = private_dir / CONTROL_DIR_FILE
    if not record.is_file():
        return None
    text = record.read_text(encoding="utf-8").strip()
    return Path(text) if text else None


def remove_control_dir(private_dir: Path) -> None:
    """Given a run's private directory, remove its SSH control folder and the record of it.

    A folder that is no longer private to this user (replaced since) is left alone.
    """
    folder = control_path_dir(private_dir)
    if folder is not None and unsafe_folder_reason(folder) is None:
        shutil.rmtree(folder, ignore_errors=True)
    (private_dir / CONTROL_DIR_FILE).unlink(missing_ok=True)


def end_run_processes(private_dir: Path) -> list[int]:
    """Given a run's private directory, end what the run left; return the PIDs ended.

    That is the ansible-playbook process group recorded in the PID file (if
    it still runs this job) and the ControlPersist SSH masters whose control
    sockets live in the run's own control folder. Processes are matched by
    the run's private path or control folder in their command line, so
    nothing else is touched. Then the files that can hold unmasked secrets
    (:func:`remove_raw_files`) and the control folder are removed: even after
    a crash, nothing unmasked outlives the run.
    """
    ended = _end_playbook(private_dir) + _end_ssh_masters(private_dir)
    remove_raw_files(private_dir)
    remove_control_dir(private_dir)
    return ended


def _end_playbook(private_dir: Path) -> list[int]:
    pid_file = private_dir / PID_FILE
    if not pid_file.is_file():
        return []
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        return []
    if pid <= 1 or not _names_run(pid, private_dir):
        return []
    try:
        os.killpg(os.getpgid(pid), signal.SIGTERM)
    except ProcessLookupError:
        return []
    return [pid]


def _end_ssh_masters(private_dir: Path) -> list[int]:
    folder = control_path_dir(private_dir)
    if folder is None:
        return []
    control = str(folder)
    ended: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid != os.getpid() and control in _cmdline_of(pid):
            try:
                os.kill(pid, signal.SIGTERM)
                ended.append(pid)
            except ProcessLookupError:
                pass
    return ended


def _stop_playbook(pid: int) -> None:
    """Given the PID of a run's ansible-playbook, ask it to stop and wait, a bounded time,
    for it to be gone.

    SIGTERM is how Ansible stops: it passes the signal to its workers, which sit in
    sessions of their own, and each ends its process group (the commands of its task)
    before ansible-playbook ends itself. ansible-runner's own stop, SIGKILL to
    ansible-playbook's process group, would leave the workers and their commands running.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.05)


def _names_run(pid: int, private_dir: Path) -> bool:
    """Given a PID and a run's private directory, return whether that process is the
    run's: its command line names the directory (the extra variables' file), or its
    environment does (the play's temporary folder is in it, with or without variables)."""
    if str(private_dir) in _cmdline_of(pid):
        return True
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"ANSIBLE_LOCAL_TEMP={private_dir / 'tmp'}".encode() in environment


def _cmdline_of(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def remove_raw_files(private_dir: Path) -> None:
    """Given a run's private directory, remove every file in it that can hold unmasked secrets.

    These are ansible-runner's environment, command, raw output and event
    files, the extra vars file and Ansible's local temporary folder.
    """
    targets = [private_dir / name for name in RAW_RUN_FILES]
    artifacts = private_dir / "artifacts"
    if artifacts.is_dir():
        targets += [ident / name for ident in artifacts.iterdir() for name in RAW_ARTIFACT_FILES]
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        elif target.is_symlink() or target.exists():
            target.unlink()


def _scrub_artifacts(job: Job, output: str) -> None:
    """Remove what can hold secrets; keep the masked output for engineers."""
    write_private(job.private_dir / OUTPUT_FILE, output)
    remove_raw_files(job.private_dir)
    for path in job.private_dir.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    if job.fact_cache is not None and job.fact_cache.is_dir():
        # Ansible's fact cache sets 0644 on each host's file, whatever the umask.
        for path in job.fact_cache.iterdir():
            if path.is_file() and not path.is_symlink():
                path.chmod(0o600)


def _command_file_remover(job: Job) -> Callable[..., None]:
    """Given a job, return a status handler removing runner's command file once the play runs.

    That file holds the whole environment (secrets included); removing it as
    soon as ansible-playbook has started means not even a crash leaves it behind.
    """

    def on_status(data: Mapping[str, Any], runner_config: Any = None) -> None:
        if data.get("status") == "running":
            (job.private_dir / "artifacts" / job.run_id / "command").unlink(missing_ok=True)

    return on_status


def run_playbook(
    job: Job,
    hosts: Sequence[str],
    secrets: SecretSet,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> PlaybookResult:
    """Given a job, the hosts it targets and the secrets to mask, run it and return the result.

    ``should_cancel`` is polled while the play runs; when it returns True
    the play's process group is ended and the result says ``canceled``.
    Raise EnvironmentProblem if ansible-runner or ansible-playbook cannot start.
    """
    try:
        import ansible_runner
    except ImportError as error:  # pragma: no cover - a broken installation
        raise EnvironmentProblem(f"ansible-runner is not installed: {error}") from error
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        raise EnvironmentProblem("ansible-playbook not found: run `make setup`")
    # ansible-runner changes directory: every path it gets must be absolute.
    job = replace(
        job,
        playbook=job.playbook.resolve(),
        inventory=job.inventory.resolve(),
        private_dir=job.private_dir.resolve(),
        vault_password_file=job.vault_password_file.resolve() if job.vault_password_file else None,
        fact_cache=job.fact_cache.resolve() if job.fact_cache else None,
    )
    # Whoever calls, what the run writes (its folders, facts, artifacts) is private.
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        return _run_job(ansible_runner, job, hosts, secrets, on_progress, should_cancel)
    finally:
        os.umask(previous_umask)


def _run_job(
    ansible_runner: Any,
    job: Job,
    hosts: Sequence[str],
    secrets: SecretSet,
    on_progress: Callable[[Progress], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> PlaybookResult:
    job.private_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    extra_vars_file: Path | None = None
    if job.extra_vars:
        # Extra vars may carry secrets: a 0600 file, never the command line.
        extra_vars_file = job.private_dir / "extravars.json"
        write_private(extra_vars_file, json.dumps(dict(job.extra_vars)))

    write_private(job.private_dir / "env" / "settings", json.dumps(RUNNER_SETTINGS))

    def record_pid(pid: int) -> None:
        write_private(job.private_dir / PID_FILE, str(pid))

    collector = EventCollector(hosts, secrets, on_progress=on_progress, on_pid=record_pid)

    def cancel() -> bool:
        if should_cancel is None or not should_cancel():
            return False
        # Ansible stops its workers itself; ansible-runner then kills what is left.
        if collector.pid is not None:
            _stop_playbook(collector.pid)
        return True

    environment = _environment(job, create_control_dir(job.private_dir))
    # ansible-playbook must be the one installed beside this interpreter.
    environment["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    started = time.monotonic()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(job.private_dir),
            ident=job.run_id,
            playbook=str(job.playbook),
            inventory=str(job.inventory),
            limit=job.limit,
            tags=job.tags,
            cmdline=_cmdline(job, extra_vars_file) or None,
            envvars=environment,
            forks=job.forks or default_forks(),
            verbosity=job.verbosity or None,
            suppress_env_files=True,
            # Facts cached per client across runs (an absolute path replaces runner's own).
            **({"fact_cache": str(job.fact_cache)} if job.fact_cache else {}),
            quiet=True,
            event_handler=collector.handle,
            status_handler=_command_file_remover(job),
            cancel_callback=cancel,
        )
    finally:
        _scrub_artifacts(job, collector.output_text())
        (job.private_dir / PID_FILE).unlink(missing_ok=True)
        end_run_processes(job.private_dir)
    return PlaybookResult(
        status=str(runner.status),
        rc=int(runner.rc if runner.rc is not None else 1),
        hosts=collector.results(),
        evidence=collector.evidence,
        canceled=runner.status == "canceled",
        duration_s=round(time.monotonic() - started, 3),
    )
