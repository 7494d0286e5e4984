"""Who is acting: the operator named in each ledger entry."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping

from webmg_ops import process
from webmg_ops.errors import BadInput
from webmg_ops.ledger.records import MAX_ACTOR_LENGTH

OPERATOR_VARIABLE = "WEBMG_OPERATOR"
UNKNOWN_ACTOR = "unknown"
_GIT_TIMEOUT_S = 5


def _read_git_user() -> str | None:
    try:
        completed = process.run(("git", "config", "user.name"), timeout=_GIT_TIMEOUT_S)
    except process.StartFailed:
        return None
    name = completed.stdout.strip()
    return name if completed.ok and name else None


def _read_login_name() -> str | None:
    try:
        return getpass.getuser() or None
    except (OSError, KeyError):
        return None


def find_operator(environ: Mapping[str, str] | None = None) -> str | None:
    """Given the environment (default ``os.environ``), return the person operating: the
    ``WEBMG_OPERATOR`` variable, else git's ``user.name``; None if neither names one."""
    env = os.environ if environ is None else environ
    name = _tidy(env.get(OPERATOR_VARIABLE, ""))
    if not name:
        name = _tidy(_read_git_user() or "")
    return name or None


def require_operator(environ: Mapping[str, str] | None = None) -> str:
    """Given the environment (default ``os.environ``), return the operator a run records.

    Raise BadInput if neither ``WEBMG_OPERATOR`` nor git's ``user.name`` names one: a
    run's record must say who ran it, and a login name (root, a shared account) does not.
    """
    name = find_operator(environ)
    if name is None:
        raise BadInput(
            "no operator to record: set WEBMG_OPERATOR to your name (for example "
            "export WEBMG_OPERATOR='Ana Lima') or git's user.name "
            "(git config --global user.name 'Ana Lima')"
        )
    return name


def resolve_actor(environ: Mapping[str, str] | None = None) -> str:
    """Given the environment (default ``os.environ``), return who is acting.

    The operator (:func:`find_operator`) wins, then the login name; ``unknown`` if none
    can be found (a record with an honest gap beats no record). A run asks for an
    operator instead (:func:`require_operator`).
    """
    name = find_operator(environ) or _tidy(_read_login_name() or "")
    return name or UNKNOWN_ACTOR


def _tidy(name: str) -> str:
    # An entry's actor must be one printable line of bounded length.
    printable = "".join(char for char in name if char.isprintable())
    return " ".join(printable.split())[:MAX_ACTOR_LENGTH].strip()
