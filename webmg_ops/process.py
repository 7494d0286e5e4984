"""The one place that spawns short-lived programs on the controller.

A command is an argv sequence, never a shell string: no word of it is ever
interpreted by a shell. :func:`run` starts it with the environment given,
feeds it an optional input, waits for it within a time limit, and returns a
frozen :class:`Completed` holding its exit status and its output.

A program that runs too long (or whose ``stop`` event is set) is ended and
reported in the result (``timed_out``, ``stopped``), not raised: each caller
words that case its own way (restic fails the command, the scratch server
fails the step, the operator's git name silently falls back). A program that
cannot be started at all raises :class:`StartFailed`, an
:class:`~webmg_ops.errors.EnvironmentProblem` with a plain message.

Whatever this module puts into a message or a ``repr`` (the argv, the error
output) passes through the caller's :class:`~webmg_ops.secrets.SecretSet`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import AnyStr, Generic, Literal, overload

from webmg_ops.errors import EnvironmentProblem
from webmg_ops.secrets import SecretSet

#: How often a running program is checked for its ``stop`` event.
STOP_POLL_S = 0.1
#: How long output is still read once a program was ended (a grandchild may hold its pipes).
DRAIN_S = 1.0
#: How many argv words a short description of a command shows.
SHOWN_WORDS = 4

_NO_SECRETS = SecretSet()

#: prctl(2)'s option for the signal a process gets when its parent ends.
_PR_SET_PDEATHSIG = 1
#: Loaded before any fork: a child must not load libraries between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True)


class StartFailed(EnvironmentProblem):
    """A program could not be started (not installed, not executable, no such folder).

    ``program`` is the argv's first word (masked), ``missing`` whether a file
    or folder was not found (the usual sign of a tool that is not installed).
    """

    def __init__(self, program: str, reason: str, *, missing: bool) -> None:
        super().__init__(f"{program} cannot be started: {reason}")
        self.program = program
        self.missing = missing


@dataclass(frozen=True)
class RunAs:
    """An account to run a program as (only root may ask): its uid and gid, no other group."""

    uid: int
    gid: int


@dataclass(frozen=True, repr=False)
class Completed(Generic[AnyStr]):
    """A program that ran: its argv, exit status and output.

    ``stdout`` and ``stderr`` are text (``str``) or ``bytes`` as the caller
    asked, unmasked: callers parse them. ``returncode`` is the exit status, or
    minus the signal number that ended it (as with ``subprocess``).
    ``timed_out`` says it was ended for running past its time limit,
    ``stopped`` that it was ended because its ``stop`` event was set; then
    the output is what it wrote until then. ``secrets`` masks what
    :meth:`shown` and :attr:`masked_stderr` and the ``repr`` show.
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: AnyStr
    stderr: AnyStr
    timed_out: bool = False
    stopped: bool = False
    secrets: SecretSet = field(default=_NO_SECRETS, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the program ran to its end and exited with status 0."""
        return self.returncode == 0 and not self.timed_out and not self.stopped

    def shown(self, words: int = SHOWN_WORDS) -> str:
        """Return the command's first ``words`` argv words, secrets masked, for a message."""
        return _shown(self.argv, self.secrets, words)

    @property
    def masked_stderr(self) -> str:
        """The error output as text (undecodable bytes replaced), secrets masked."""
        text = self.stderr if isinstance(self.stderr, str) else _decode(self.stderr)
        return self.secrets.mask_text(text)

    def __repr__(self) -> str:
        # A result may end up in a log or a traceback: never with a secret in it.
        mask = self.secrets.mask_data
        return (
            f"Completed(argv={mask(list(self.argv))!r}, returncode={self.returncode}, "
            f"stdout={mask(self._text(self.stdout))!r}, stderr={mask(self._text(self.stderr))!r}, "
            f"timed_out={self.timed_out}, stopped={self.stopped})"
        )

    @staticmethod
    def _text(output: str | bytes) -> str:
        return output if isinstance(output, str) else _decode(output)


def _decode(output: bytes) -> str:
    return output.decode("utf-8", errors="replace")


def _as_text(output: bytes) -> str:
    # As subprocess's text mode does: universal newlines. Undecodable bytes are
    # replaced rather than raised, so that a program's stray byte fails no command.
    return _decode(output).replace("\r\n", "\n").replace("\r", "\n")


def _shown(argv: Sequence[str], secrets: SecretSet, words: int) -> str:
    head = " ".join(secrets.mask_data(list(argv))[:words])
    return head + (" ..." if len(argv) > words else "")


def _end(child: subprocess.Popen[bytes], grace: float) -> None:
    """End CHILD: SIGTERM first when ``grace`` > 0, SIGKILL after it; reap it."""
    if grace > 0:
        # A program that cleans up on SIGTERM (restic removes its repository lock) gets
        # the chance to; one that does not answer within the grace is killed.
        child.terminate()
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    child.kill()
    child.wait()


def _drain(child: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Return the rest of an ended CHILD's output, giving up after :data:`DRAIN_S`."""
    try:
        return child.communicate(timeout=DRAIN_S)
    except subprocess.TimeoutExpired as held:
        # A grandchild still holds the pipes open: keep what was read, do not wait on it.
        return held.output or b"", held.stderr or b""


@overload
def run(
    argv: Sequence[str],
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = ...,
    input: str | bytes | None = ...,
    cwd: Path | str | None = ...,
    secrets: SecretSet | None = ...,
    run_as: RunAs | None = ...,
    stop: threading.Event | None = ...,
    grace: float = ...,
    text: Literal[True] = ...,
    die_with_parent: bool = ...,
    own_session: bool = ...,
) -> Completed[str]: ...


@overload
def run(
    argv: Sequence[str],
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = ...,
    input: str | bytes | None = ...,
    cwd: Path | str | None = ...,
    secrets: SecretSet | None = ...,
    run_as: RunAs | None = ...,
    stop: threading.Event | None = ...,
    grace: float = ...,
    text: Literal[False],
    die_with_parent: bool = ...,
    own_session: bool = ...,
) -> Completed[bytes]: ...


def run(
    argv: Sequence[str],
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    cwd: Path | str | None = None,
    secrets: SecretSet | None = None,
    run_as: RunAs | None = None,
    stop: threading.Event | None = None,
    grace: float = 0.0,
    text: bool = True,
    die_with_parent: bool = False,
    own_session: bool = False,
) -> Completed[str] | Completed[bytes]:
    """Given an argv, run it to its end and return what it did.

    Inputs: ``argv``, the program and its arguments (never a shell string; the
    program is looked up on the ``PATH`` of ``env``). ``timeout``, the seconds
    it may run (``None``: no limit; every caller says which). ``env``, the
    program's whole environment (``None``: this process's; ``{}``: none at
    all); callers that add variables merge ``os.environ`` themselves.
    ``input``, written to its standard input (text is encoded as UTF-8);
    without it, standard input is ``/dev/null``. ``cwd``, the folder it runs
    in. ``secrets``, the values masked in what this module shows. ``run_as``,
    the account it runs as (the controller must be root). ``stop``, an event
    that ends it when set. ``grace``, the seconds between SIGTERM and SIGKILL
    when it is ended (0: SIGKILL at once, as ``subprocess.run`` does).
    ``text``: return output as text (UTF-8, universal newlines) or as bytes.
    ``die_with_parent``: the kernel kills the program (SIGKILL) if the thread that
    started it ends, this process killed included (Linux's parent-death signal).
    ``own_session``: the program runs in a session of its own, so that a terminal's
    Ctrl-C (sent to this process's group) does not reach it.

    Result: a :class:`Completed` with the argv, exit status, output, and
    whether it was ended for its time limit (``timed_out``) or its ``stop``
    event (``stopped``). A status other than 0 is no error here.

    Errors: :class:`StartFailed` (an ``EnvironmentProblem``) if the program
    cannot be started: not found, not executable, no such ``cwd``, or
    ``run_as`` refused. Should this process be interrupted while it waits
    (Ctrl-C), the program is ended as for a timeout and the interruption goes on.
    """
    words = tuple(argv)
    if not words:
        raise ValueError("a command needs at least a program")
    mask = secrets if secrets is not None else _NO_SECRETS
    data = input.encode() if isinstance(input, str) else input
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        child = subprocess.Popen(
            words,
            # Without input the program reads /dev/null, never the operator's terminal:
            # its output is captured, so a prompt of it would wait unseen.
            stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            cwd=cwd,
            user=None if run_as is None else run_as.uid,
            group=None if run_as is None else run_as.gid,
            extra_groups=None if run_as is None else [],
            preexec_fn=_die_with_parent if die_with_parent else None,
            start_new_session=own_session,
        )
    except OSError as error:
        program = _shown(words[:1], mask, 1)
        reason = error.strerror or str(error)
        if error.filename is not None and str(error.filename) != words[0]:
            reason += f": {mask.mask_text(str(error.filename))}"
        missing = isinstance(error, FileNotFoundError) or error.errno == errno.ENOENT
        raise StartFailed(program, reason, missing=missing) from None
    timed_out = stopped = False
    with child:
        try:
            while True:
                wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                if stop is not None:
                    wait = STOP_POLL_S if wait is None else min(wait, STOP_POLL_S)
                try:
                    stdout, stderr = child.communicate(data, timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    # communicate() keeps what it read and the input it was given.
                    data = None
                    stopped = stop is not None and stop.is_set()
                    timed_out = (
                        not stopped and deadline is not None and time.monotonic() >= deadline
                    )
                    if stopped or timed_out:
                        _end(child, grace)
                        stdout, stderr = _drain(child)
                        break
        except BaseException:
            _end(child, grace)
            raise
    returncode = child.returncode
    if text:
        return Completed(
            words, returncode, _as_text(stdout), _as_text(stderr), timed_out, stopped, mask
        )
    return Completed(words, returncode, stdout, stderr, timed_out, stopped, mask)


def _die_with_parent() -> None:
    """In a child between fork and exec: ask the kernel for SIGKILL when its parent ends.

    A queued run must not outlive a worker killed with SIGKILL: it would go on with no
    one to finish its job, while the next worker closes it as interrupted.
    """
    if _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(127)


def process_alive(pid: int) -> bool:
    """Given a PID, return whether a process with it runs (a zombie, ended but not yet
    reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
