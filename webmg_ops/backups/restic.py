"""The one module that runs restic on the controller.

Commands are argv lists; the repository and its password travel in the
environment (``RESTIC_REPOSITORY``, ``RESTIC_PASSWORD_FILE`` or
``RESTIC_PASSWORD``), never on the command line. restic's JSON output is
parsed into typed results, and its exit status is mapped through one table
into clear errors. restic documents 0 ok, 1 fatal, 3 partial backup, 10
repository missing, 11 locked and 12 wrong password (since 0.17; older
versions say the same on stderr with status 1, which is read as a
fallback); any other status is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from webmg_ops import process
from webmg_ops.errors import EnvironmentProblem, Failed
from webmg_ops.secrets import secrets_from_environment

DEFAULT_TIMEOUT_S = 6 * 3600
#: How long a restic that is stopped or timed out has to exit after SIGTERM.
TERMINATE_GRACE_S = 30.0


class ResticFailure(StrEnum):
    """Why a restic command failed."""

    FATAL = "fatal"
    PARTIAL = "partial backup"
    REPOSITORY_MISSING = "repository missing"
    LOCKED = "repository locked"
    WRONG_PASSWORD = "wrong password"
    INTEGRITY = "integrity error"
    UNKNOWN = "unknown failure"


#: restic's documented exit statuses.
EXIT_STATUSES: dict[int, ResticFailure] = {
    1: ResticFailure.FATAL,
    3: ResticFailure.PARTIAL,
    10: ResticFailure.REPOSITORY_MISSING,
    11: ResticFailure.LOCKED,
    12: ResticFailure.WRONG_PASSWORD,
}

#: What restic before 0.17 prints, with status 1, for the same failures.
STDERR_SIGNS: tuple[tuple[str, ResticFailure], ...] = (
    ("wrong password or no key found", ResticFailure.WRONG_PASSWORD),
    ("unable to open config file", ResticFailure.REPOSITORY_MISSING),
    ("is there a repository at the following location", ResticFailure.REPOSITORY_MISSING),
    ("repository is already locked", ResticFailure.LOCKED),
    ("unable to create lock", ResticFailure.LOCKED),
    ("pack", ResticFailure.INTEGRITY),
    ("ciphertext verification failed", ResticFailure.INTEGRITY),
    ("checksum", ResticFailure.INTEGRITY),
)


class ResticError(Failed):
    """A restic command failed; ``failure`` says why, ``detail`` holds restic's words."""

    def __init__(self, failure: ResticFailure, command: str, detail: str) -> None:
        super().__init__(f"restic {command}: {failure.value}: {detail}".strip())
        self.failure = failure
        self.detail = detail


def classify_failure(status: int, stderr: str) -> ResticFailure:
    """Given restic's exit status and stderr, return why it failed."""
    failure = EXIT_STATUSES.get(status, ResticFailure.UNKNOWN)
    if failure is ResticFailure.FATAL:
        lowered = stderr.lower()
        for sign, meaning in STDERR_SIGNS:
            if sign in lowered:
                return meaning
    return failure


@dataclass(frozen=True)
class Repository:
    """A restic repository and how to open it.

    ``password_file`` is preferred over ``password``; ``environment`` carries
    backend credentials (for example ``AWS_ACCESS_KEY_ID``), never logged.
    ``options`` are restic's extended options (``-o NAME=VALUE``, e.g.
    ``sftp.command=ssh ...``), put before every command; never secrets.
    """

    location: str
    password_file: Path | None = None
    password: str | None = field(default=None, repr=False)
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    cache_dir: Path | None = None
    options: tuple[str, ...] = ()

    def arguments(self) -> list[str]:
        """Return the global arguments restic needs for this repository (no secrets)."""
        return [part for option in self.options for part in ("-o", option)]

    def env(self) -> dict[str, str]:
        """Return the environment restic needs for this repository."""
        values = {"RESTIC_REPOSITORY": self.location, **self.environment}
        if self.password_file is not None:
            values["RESTIC_PASSWORD_FILE"] = str(self.password_file)
        elif self.password is not None:
            values["RESTIC_PASSWORD"] = self.password
        else:
            raise EnvironmentProblem(f"no password for the restic repository {self.location}")
        if self.cache_dir is not None:
            values["RESTIC_CACHE_DIR"] = str(self.cache_dir)
        else:
            values["RESTIC_CACHE_DIR"] = str(Path.home() / ".cache" / "restic")
        return values


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of a repository."""

    id: str
    short_id: str
    time: datetime
    hostname: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class BackupSummary:
    """What ``restic backup`` did."""

    snapshot_id: str
    files_new: int
    files_changed: int
    files_unmodified: int
    data_added: int
    total_files: int
    total_bytes: int
    duration_s: float


@dataclass(frozen=True)
class Node:
    """A file or folder inside a snapshot; ``mtime`` is when the host last wrote it."""

    path: str
    type: str
    size: int
    mtime: datetime | None = None


@dataclass(frozen=True)
class CheckResult:
    """What ``restic check`` found."""

    ok: bool
    read_data_subset: str | None
    errors: tuple[str, ...]
    duration_s: float


@dataclass(frozen=True)
class ForgetResult:
    """Snapshots kept and removed by ``restic forget``."""

    kept: tuple[str, ...]
    removed: tuple[str, ...]


def restic_binary() -> str:
    """Return the path of the restic binary. Raise EnvironmentProblem if it is missing."""
    found = shutil.which("restic")
    if found is None:
        raise EnvironmentProblem("restic is not installed: run `make setup`")
    return found


def run_restic(
    repository: Repository,
    arguments: Sequence[str],
    *,
    command: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    accept: frozenset[int] = frozenset({0}),
    stop: threading.Event | None = None,
) -> process.Completed[str]:
    """Given a repository and restic arguments (no secrets), run restic and return the result.

    Raise ResticError, classified by exit status and stderr, if restic exits
    with a status outside ``accept`` or ``stop`` is set while it runs (it is
    then terminated); EnvironmentProblem if restic is missing.
    """
    argv = [restic_binary(), "--quiet", *repository.arguments(), *arguments]
    variables = repository.env()
    done = process.run(
        argv,
        env={**os.environ, **variables},
        timeout=timeout,
        stop=stop,
        # SIGTERM first: restic then removes the lock it holds on the repository.
        grace=TERMINATE_GRACE_S,
        secrets=secrets_from_environment(variables),
    )
    if done.stopped or done.timed_out:
        detail = "stopped" if done.stopped else f"timed out after {timeout:.0f} s"
        raise ResticError(ResticFailure.FATAL, command, detail)
    if done.returncode not in accept:
        failure = classify_failure(done.returncode, done.stderr)
        detail = " ".join(done.masked_stderr.strip().splitlines()[-3:])
        raise ResticError(failure, command, detail or f"exit status {done.returncode}")
    return done


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def init_repository(repository: Repository) -> None:
    """Create the repository. Raise ResticError if it cannot be created."""
    run_restic(repository, ["init"], command="init")


def backup(
    repository: Repository,
    paths: Sequence[Path],
    *,
    tags: Sequence[str] = (),
    host: str | None = None,
    at: datetime | None = None,
) -> BackupSummary:
    """Given paths to save, back them up and return the summary.

    ``at`` sets the snapshot's time (restic ``--time``), for imports and
    retention tests. Raise ResticError (``PARTIAL`` when some files could
    not be read; the snapshot then exists but is incomplete).
    """
    arguments = ["backup", "--json"]
    for tag in tags:
        arguments += ["--tag", tag]
    if host:
        arguments += ["--host", host]
    if at is not None:
        arguments += ["--time", at.strftime("%Y-%m-%d %H:%M:%S")]
    arguments += ["--", *(str(path) for path in paths)]
    started = time.monotonic()
    done = run_restic(repository, arguments, command="backup")
    summary = next(
        (line for line in _json_lines(done.stdout) if line.get("message_type") == "summary"), None
    )
    if summary is None:
        raise ResticError(ResticFailure.UNKNOWN, "backup", "no summary in restic's output")
    return BackupSummary(
        snapshot_id=str(summary["snapshot_id"]),
        files_new=int(summary.get("files_new", 0)),
        files_changed=int(summary.get("files_changed", 0)),
        files_unmodified=int(summary.get("files_unmodified", 0)),
        data_added=int(summary.get("data_added", 0)),
        total_files=int(summary.get("total_files_processed", 0)),
        total_bytes=int(summary.get("total_bytes_processed", 0)),
        duration_s=round(float(summary.get("total_duration", time.monotonic() - started)), 3),
    )


def _parse_time(text: str) -> datetime:
    # restic writes nanoseconds; Python keeps microseconds.
    head, _, rest = text.partition(".")
    if not rest:
        return datetime.fromisoformat(text)
    digits = "".join(ch for ch in rest if ch.isdigit())
    zone = rest[len(digits) :]
    return datetime.fromisoformat(f"{head}.{digits[:6].ljust(6, '0')}{zone}")


def list_snapshots(repository: Repository, *, tags: Sequence[str] = ()) -> list[Snapshot]:
    """Return the repository's snapshots, oldest first."""
    arguments = ["snapshots", "--json"]
    for tag in tags:
        arguments += ["--tag", tag]
    done = run_restic(repository, arguments, command="snapshots")
    snapshots = [
        Snapshot(
            id=str(item["id"]),
            short_id=str(item.get("short_id", item["id"][:8])),
            time=_parse_time(str(item["time"])),
            hostname=str(item.get("hostname", "")),
            paths=tuple(item.get("paths") or ()),
            tags=tuple(item.get("tags") or ()),
        )
        for item in json.loads(done.stdout or "[]")
    ]
    return sorted(snapshots, key=lambda snapshot: snapshot.time)


def _node(item: Mapping[str, Any]) -> Node:
    mtime = item.get("mtime")
    return Node(
        path=str(item["path"]),
        type=str(item.get("type", "")),
        size=int(item.get("size", 0)),
        mtime=_parse_time(str(mtime)) if mtime else None,
    )


def list_files(repository: Repository, snapshot_id: str) -> list[Node]:
    """Given a snapshot, return its files and folders."""
    done = run_restic(repository, ["ls", "--json", snapshot_id], command="ls")
    return [_node(item) for item in _json_lines(done.stdout) if item.get("struct_type") == "node"]


def find_node(repository: Repository, snapshot_id: str, path: str) -> Node | None:
    """Given a snapshot and an absolute path, return the node at that path (None if absent).

    Only the folders leading to ``path`` are listed, not the whole snapshot.
    Raise ResticError if restic fails (no such snapshot, repository unreadable).
    """
    done = run_restic(repository, ["ls", "--json", snapshot_id, path], command="ls")
    items = list(_json_lines(done.stdout))
    if not any(item.get("struct_type") == "snapshot" for item in items):
        # restic 0.14 exits 0 for an unknown snapshot, saying so only on stderr.
        detail = " ".join(done.masked_stderr.strip().splitlines()[-1:])
        raise ResticError(ResticFailure.FATAL, "ls", detail or f"no snapshot {snapshot_id}")
    return next(
        (
            _node(item)
            for item in items
            if item.get("struct_type") == "node" and item.get("path") == path
        ),
        None,
    )


def dump_file(repository: Repository, snapshot_id: str, path: str) -> str:
    """Given a snapshot and the path of a regular file in it, return the file's content as
    text (undecodable bytes replaced). The caller bounds its size first (:func:`find_node`).

    Raise ResticError if restic fails (the path is not in the snapshot, data unreadable).
    """
    return run_restic(repository, ["dump", snapshot_id, path], command="dump").stdout


def restore(
    repository: Repository,
    snapshot_id: str,
    target: Path,
    *,
    include: Sequence[str] = (),
    stop: threading.Event | None = None,
) -> float:
    """Given a snapshot and an empty target folder, restore into it; return the seconds taken.

    Raise ResticError if restic fails or `stop` is set, ValueError if the target is not empty
    (a restore never goes over existing data).
    """
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"restore target {target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    arguments = ["restore", snapshot_id, "--target", str(target)]
    for pattern in include:
        arguments += ["--include", pattern]
    started = time.monotonic()
    run_restic(repository, arguments, command="restore", stop=stop)
    return round(time.monotonic() - started, 3)


def check_repository(
    repository: Repository, *, read_data_subset: str | None = None, lock: bool = True
) -> CheckResult:
    """Check the repository's structure, and read a subset of its data if asked ("1/5", "10%").

    Return the result; an integrity problem is a result with ``ok`` False,
    not an exception. Raise ResticError for other failures (wrong password,
    missing repository, lock). ``lock=False`` checks without locking (beside a restore).
    """
    # check locks the repository exclusively; a check beside a restore (both
    # only read) goes without the lock.
    arguments = ["check"] if lock else ["--no-lock", "check"]
    if read_data_subset:
        arguments += [f"--read-data-subset={read_data_subset}"]
    started = time.monotonic()
    try:
        run_restic(repository, arguments, command="check")
    except ResticError as error:
        if error.failure in (ResticFailure.FATAL, ResticFailure.INTEGRITY, ResticFailure.UNKNOWN):
            return CheckResult(
                ok=False,
                read_data_subset=read_data_subset,
                errors=(error.detail,),
                duration_s=round(time.monotonic() - started, 3),
            )
        raise
    return CheckResult(
        ok=True,
        read_data_subset=read_data_subset,
        errors=(),
        duration_s=round(time.monotonic() - started, 3),
    )


def forget(
    repository: Repository,
    *,
    hourly: int = 0,
    daily: int = 0,
    weekly: int = 0,
    monthly: int = 0,
    yearly: int = 0,
    prune: bool = True,
    arguments: Sequence[str] = (),
) -> ForgetResult:
    """Apply a retention policy (per host and paths); return the snapshots kept and removed.

    ``arguments`` are given to restic as they are, after the counts (for
    example ``--keep-daily 7 --group-by host --tag webmg``, as derived by
    :func:`webmg_ops.actions.backup.forget_arguments`).
    """
    argv = ["forget", "--json"]
    for flag, count in (
        ("--keep-hourly", hourly),
        ("--keep-daily", daily),
        ("--keep-weekly", weekly),
        ("--keep-monthly", monthly),
        ("--keep-yearly", yearly),
    ):
        if count:
            argv += [flag, str(count)]
    argv += arguments
    if prune:
        argv.append("--prune")
    done = run_restic(repository, argv, command="forget")
    kept: list[str] = []
    removed: list[str] = []
    text = done.stdout.strip()
    groups = json.loads(text[text.index("[") :]) if "[" in text else []
    for group in groups:
        kept.extend(str(item["id"]) for item in group.get("keep") or [])
        removed.extend(str(item["id"]) for item in group.get("remove") or [])
    return ForgetResult(kept=tuple(kept), removed=tuple(removed))


def unlock(repository: Repository, *, remove_all: bool = False) -> None:
    """Remove stale locks (all locks with ``remove_all``)."""
    run_restic(repository, ["unlock", *(["--remove-all"] if remove_all else [])], command="unlock")
