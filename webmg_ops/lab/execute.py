"""The one place where the lab spawns processes.

Commands are argv lists, never shell strings. Commands whose output is
captured run through :mod:`webmg_ops.process`; builds that stream into a
log, commands attached to the terminal and detached daemons are started
here with ``subprocess``. A command that fails raises
:class:`~webmg_ops.errors.Failed` with the command and the tail of its
error output; a command that is missing raises
:class:`~webmg_ops.errors.EnvironmentProblem`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from webmg_ops import process
from webmg_ops.errors import EnvironmentProblem, Failed

#: How many characters of a failed command's error output an error shows.
ERROR_TAIL_CHARS = 2000


def _describe(argv: Sequence[str]) -> str:
    return " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")


def run(
    argv: Sequence[str],
    *,
    input_bytes: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> process.Completed[bytes]:
    """Given an argv list, run it to completion and return its completed process.

    Output is captured. ``env`` entries are added to the current environment.
    Raise ``Failed`` if it exits non-zero and ``check`` is true, or if it runs
    longer than ``timeout`` seconds; raise ``EnvironmentProblem`` if the
    program does not exist.
    """
    full_env = {**os.environ, **env} if env else None
    try:
        result = process.run(
            argv, input=input_bytes, env=full_env, cwd=cwd, timeout=timeout, text=False
        )
    except process.StartFailed as failed:
        if failed.missing:
            raise EnvironmentProblem(f"{argv[0]} is not installed (run make setup)") from failed
        raise
    if result.timed_out:
        raise Failed(f"{_describe(argv)} took longer than {timeout} s")
    if check and result.returncode != 0:
        tail = result.masked_stderr.strip()[-ERROR_TAIL_CHARS:]
        raise Failed(f"{_describe(argv)} exited with {result.returncode}: {tail}")
    return result


def output(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> str:
    """Given an argv list, run it and return its standard output as text.

    Raise as :func:`run` does.
    """
    return run(argv, env=env, cwd=cwd, timeout=timeout).stdout.decode()


def run_streaming(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    before_exec: Callable[[], None] | None = None,
) -> None:
    """Given an argv list and a log file, run it with its output appended to the log.

    Used for long builds whose output is too large to keep in memory.
    ``before_exec`` runs in the child just before the program (for example to
    join a cgroup). Raise ``Failed`` naming the log if it exits non-zero;
    raise ``EnvironmentProblem`` if the program does not exist.
    """
    full_env = {**os.environ, **env} if env else None
    with log_path.open("ab") as log:
        try:
            returncode = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=full_env,
                preexec_fn=before_exec,
            ).returncode
        except FileNotFoundError as missing:
            raise EnvironmentProblem(f"{argv[0]} is not installed (run make setup)") from missing
    if returncode != 0:
        raise Failed(f"{_describe(argv)} exited with {returncode}; see {log_path}")


def run_attached(argv: Sequence[str]) -> int:
    """Given an argv list, run it on the caller's terminal and return its exit status.

    Raise ``EnvironmentProblem`` if the program does not exist.
    """
    try:
        return subprocess.run(list(argv), check=False).returncode
    except FileNotFoundError as missing:
        raise EnvironmentProblem(f"{argv[0]} is not installed (run make setup)") from missing


def start_detached(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Given an argv list and a log file, start it in a new session and return its PID.

    The process outlives the command that started it (it is not waited for
    and has its own session), reads nothing and writes to the log. Raise
    ``EnvironmentProblem`` if the program does not exist.
    """
    full_env = {**os.environ, **env} if env else None
    with log_path.open("ab") as log:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as missing:
            raise EnvironmentProblem(f"{argv[0]} is not installed (run make setup)") from missing
    return process.pid
