"""Retention and checks of a client's backup repositories, run from the controller.

A client host only adds snapshots to its own repository: on the agency's
backup target its key reaches an append-only server, and it holds no right
to delete anything. Forgetting snapshots beyond the retention, pruning
their data and checking each repository therefore run here, after the
hosts' backups, with the controller's own access (the client's key over
SFTP, or the client's S3 key pair), through :mod:`webmg_ops.backups.restic`.

The evidence of each host's repository has the shape the run log and the
ledger read (see :func:`webmg_ops.actions.backup.combined_repository_evidence`):
``initialized``, ``forget`` (arguments, counts and ids kept and removed) and
``check`` (ok, data subset, seconds, errors). A failure is evidence, never
an exception: a repository that cannot be maintained is a failed check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from webmg_ops.backups import restic
from webmg_ops.backups.restic import Repository, ResticError, ResticFailure

#: Attempts, and seconds between them, while another process (a host's timer backup) holds
#: the repository's lock: forget and check need it alone.
LOCK_ATTEMPTS = 20
LOCK_DELAY_S = 15.0

_T = TypeVar("_T")


@dataclass(frozen=True)
class MaintenancePlan:
    """What the policy asks of each repository after a backup.

    ``forget_arguments``: restic forget's (keep counts, grouping, tag);
    ``check_subset``: the data subset restic check reads ("" reads none).
    """

    forget_arguments: tuple[str, ...]
    check_subset: str = ""


def _with_lock_retries(
    work: Callable[[], _T], *, attempts: int, delay_s: float, stop: threading.Event
) -> _T:
    """Given work that takes the repository's lock, return its result, trying again while
    the repository is locked. Raise the last ResticError otherwise or once out of attempts.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except ResticError as error:
            if error.failure is not ResticFailure.LOCKED or attempt == attempts:
                raise
            if stop.wait(delay_s):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def maintain_repository(
    repository: Repository,
    plan: MaintenancePlan,
    *,
    initialized: bool = False,
    attempts: int = LOCK_ATTEMPTS,
    delay_s: float = LOCK_DELAY_S,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Given one host's repository and the plan, forget and prune beyond the retention, then
    check it; return the repository's evidence (``initialized`` as the play reported it).

    Never raises for restic's failures: each becomes an error of the check.
    """
    stop = stop or threading.Event()
    errors: list[str] = []
    kept: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    try:
        result = _with_lock_retries(
            lambda: restic.forget(repository, arguments=plan.forget_arguments),
            attempts=attempts,
            delay_s=delay_s,
            stop=stop,
        )
        kept, removed = result.kept, result.removed
    except ResticError as error:
        errors.append(f"retention not applied: {error.failure}: {error.detail}")
    ok, duration = False, None
    try:
        check = _with_lock_retries(
            lambda: restic.check_repository(repository, read_data_subset=plan.check_subset or None),
            attempts=attempts,
            delay_s=delay_s,
            stop=stop,
        )
        ok, duration = check.ok, check.duration_s
        errors.extend(check.errors)
    except ResticError as error:
        errors.append(f"check not run: {error.failure}: {error.detail}")
    return repository_evidence(
        plan,
        initialized=initialized,
        kept=kept,
        removed=removed,
        ok=ok and not errors,
        duration_s=duration,
        errors=errors,
    )


def repository_evidence(
    plan: MaintenancePlan,
    *,
    initialized: bool,
    errors: list[str],
    kept: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
    ok: bool = False,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Given the plan and what became of one repository, return its evidence (a repository
    that could not be opened: ``errors`` alone)."""
    return {
        "initialized": initialized,
        "forget": {
            "arguments": list(plan.forget_arguments),
            "kept": len(kept),
            "removed": len(removed),
            "kept_ids": list(kept),
            "removed_ids": list(removed),
        },
        "check": {
            "ok": ok,
            "subset": plan.check_subset or None,
            "duration_s": duration_s,
            "errors": errors,
        },
    }


def maintain_repositories(
    repositories: Mapping[str, Repository],
    plan: MaintenancePlan,
    *,
    initialized: Mapping[str, bool] | None = None,
    attempts: int = LOCK_ATTEMPTS,
    delay_s: float = LOCK_DELAY_S,
) -> dict[str, dict[str, Any]]:
    """Given each host's repository and the plan, maintain each in turn; return each
    host's evidence (see :func:`maintain_repository`), by host name.
    """
    return {
        host: maintain_repository(
            repository,
            plan,
            initialized=bool((initialized or {}).get(host)),
            attempts=attempts,
            delay_s=delay_s,
        )
        for host, repository in sorted(repositories.items())
    }
