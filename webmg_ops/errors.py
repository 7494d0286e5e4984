"""Exit statuses and the exceptions that map to them.

Every command ends with one of the statuses of :class:`ExitCode`; the
mapping from an exception to a status is decided here, by the exception's
class, and applied in exactly one place (``webmg_ops.cli.main``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit statuses of every ``webmg-ops`` command."""

    OK = 0
    """Done."""
    FAILED = 1
    """The run failed on hosts, or a verification found a problem (recorded)."""
    BAD_INPUT = 2
    """Bad input or configuration; nothing was written."""
    REFUSED = 3
    """Refused by policy: window, freeze, lock or missing approval."""
    ENVIRONMENT = 4
    """Environment problem: missing tool, unreachable ledger, not root."""


class WebmgError(Exception):
    """Base of every error the tool reports to a user without a traceback.

    Given a human message, carry it with the exit status of the class.
    """

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(WebmgError):
    """The user's input or configuration is invalid; nothing was written."""

    exit_code = ExitCode.BAD_INPUT


class Refused(WebmgError):
    """Policy refuses the request (window, freeze, lock, approval)."""

    exit_code = ExitCode.REFUSED


class EnvironmentProblem(WebmgError):
    """The machine lacks something the command needs (a tool, root, the ledger)."""

    exit_code = ExitCode.ENVIRONMENT


class Failed(WebmgError):
    """The work ran and failed, or a verification found a problem."""

    exit_code = ExitCode.FAILED
