"""The process helper, with real programs: status, output, time limits, environment, secrets."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.waiting import wait_until

from webmg_ops import process
from webmg_ops.errors import EnvironmentProblem, ExitCode
from webmg_ops.secrets import MASK, SecretSet

SECRET = "s3cr3t-Canary-4711"


def gone(pid: int) -> bool:
    """Return whether no process has PID (a zombie still counts as present)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_exit_status_and_output_come_back() -> None:
    done = process.run(["/bin/sh", "-c", "printf out; printf err >&2; exit 7"], timeout=10)

    assert (done.returncode, done.stdout, done.stderr) == (7, "out", "err")
    assert not done.ok and not done.timed_out and not done.stopped
    assert done.argv == ("/bin/sh", "-c", "printf out; printf err >&2; exit 7")


def test_true_is_ok_and_false_is_not() -> None:
    assert process.run(["true"], timeout=10).ok
    failed = process.run(["false"], timeout=10)
    assert failed.returncode == 1 and not failed.ok


def test_argv_words_reach_the_program_without_a_shell() -> None:
    word = "a; echo injected $(id) `id` > /dev/null"

    done = process.run(["printf", "%s", word], timeout=10)

    assert done.stdout == word


def test_input_is_fed_and_stdin_is_empty_without_it() -> None:
    assert process.run(["cat"], input="line\n", timeout=10).stdout == "line\n"
    assert process.run(["cat"], input=b"\x00\xff", timeout=10, text=False).stdout == b"\x00\xff"
    # Without input the program reads /dev/null: cat ends at once, it does not wait.
    assert process.run(["cat"], timeout=10).stdout == ""


def test_text_mode_translates_newlines_and_survives_bad_bytes() -> None:
    done = process.run(["printf", "a\\r\\nb\\377"], timeout=10)
    raw = process.run(["printf", "a\\r\\nb\\377"], timeout=10, text=False)

    assert done.stdout == "a\nb\ufffd"
    assert raw.stdout == b"a\r\nb\xff"


def test_a_missing_program_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    program = str(tmp_path / "no-such-tool")

    with pytest.raises(process.StartFailed) as raised:
        process.run([program, "--version"], timeout=10)

    assert isinstance(raised.value, EnvironmentProblem)
    assert raised.value.exit_code is ExitCode.ENVIRONMENT
    assert raised.value.missing
    assert program in raised.value.message
    assert "No such file" in raised.value.message


def test_a_missing_folder_is_named_in_the_error(tmp_path: Path) -> None:
    folder = tmp_path / "absent"

    with pytest.raises(process.StartFailed) as raised:
        process.run(["true"], timeout=10, cwd=folder)

    assert str(folder) in raised.value.message


def test_a_program_that_is_not_executable_is_a_typed_error(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)

    with pytest.raises(process.StartFailed) as raised:
        process.run([str(script)], timeout=10)

    assert not raised.value.missing
    assert "Permission denied" in raised.value.message


def test_a_timeout_is_reported_and_the_child_is_gone() -> None:
    started = time.monotonic()

    done = process.run(["/bin/sh", "-c", "echo $$; exec sleep 60"], timeout=0.5)

    assert time.monotonic() - started < 10
    assert done.timed_out and not done.stopped and not done.ok
    assert done.returncode == -signal.SIGKILL
    pid = int(done.stdout)
    assert gone(pid)


def test_a_grandchild_holding_the_pipes_does_not_hold_the_result() -> None:
    started = time.monotonic()

    done = process.run(["/bin/sh", "-c", "sleep 60 & echo $!; wait"], timeout=0.5)

    grandchild = int(done.stdout)
    try:
        assert time.monotonic() - started < 10
        assert done.timed_out
    finally:
        os.kill(grandchild, signal.SIGKILL)


def test_a_fast_program_within_its_time_limit_is_not_timed_out() -> None:
    done = process.run(["sleep", "0"], timeout=30)

    assert done.ok and not done.timed_out


def test_a_stop_event_ends_the_program() -> None:
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        done = process.run(["/bin/sh", "-c", "echo $$; exec sleep 60"], timeout=None, stop=stop)
    finally:
        timer.cancel()

    assert done.stopped and not done.timed_out and not done.ok
    assert gone(int(done.stdout))


def test_the_grace_lets_a_program_clean_up_on_sigterm() -> None:
    script = 'trap "echo cleaned; exit 5" TERM; echo ready; while :; do sleep 0.05; done'

    done = process.run(["/bin/sh", "-c", script], timeout=0.5, grace=10)

    assert done.timed_out
    assert (done.returncode, done.stdout) == (5, "ready\ncleaned\n")


def test_a_program_deaf_to_sigterm_is_killed_after_the_grace() -> None:
    script = 'trap "" TERM; echo $$; while :; do sleep 0.05; done'

    done = process.run(["/bin/sh", "-c", script], timeout=0.3, grace=0.3)

    assert done.timed_out and done.returncode == -signal.SIGKILL
    assert gone(int(done.stdout.split()[0]))


def test_the_child_sees_exactly_the_environment_passed() -> None:
    env_program = shutil.which("env")
    assert env_program is not None

    only = process.run([env_program], env={"ONLY": "this one"}, timeout=10)
    clean = process.run([env_program], env={}, timeout=10)

    assert only.stdout == "ONLY=this one\n"
    assert clean.stdout == ""


def test_without_an_environment_the_child_inherits_this_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBMG_PROCESS_TEST", "inherited")

    done = process.run(["/bin/sh", "-c", 'printf %s "$WEBMG_PROCESS_TEST"'], timeout=10)

    assert done.stdout == "inherited"


def test_the_result_is_frozen() -> None:
    done = process.run(["true"], timeout=10)

    with pytest.raises(dataclasses.FrozenInstanceError):
        done.returncode = 1  # type: ignore[misc]


def test_an_empty_argv_is_refused() -> None:
    with pytest.raises(ValueError):
        process.run([], timeout=10)


def test_secrets_in_argv_and_stderr_are_masked_in_repr_and_messages() -> None:
    secrets = SecretSet.of([SECRET])

    done = process.run(
        ["/bin/sh", "-c", 'echo "denied for $1" >&2; exit 1', "sh", SECRET],
        timeout=10,
        secrets=secrets,
    )

    # The raw output keeps the secret (callers parse it); what is shown never does.
    assert SECRET in done.stderr
    for shown in (repr(done), done.masked_stderr, done.shown(words=10)):
        assert SECRET not in shown
        assert MASK in shown
    assert "denied for" in done.masked_stderr


def test_a_secret_in_a_program_that_cannot_start_is_masked(tmp_path: Path) -> None:
    program = tmp_path / SECRET / "tool"

    with pytest.raises(process.StartFailed) as raised:
        process.run([str(program)], timeout=10, secrets=SecretSet.of([SECRET]))

    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
    assert MASK in raised.value.message


def test_a_secret_in_a_missing_folder_is_masked(tmp_path: Path) -> None:
    folder = tmp_path / SECRET

    with pytest.raises(process.StartFailed) as raised:
        process.run(["true"], timeout=10, cwd=folder, secrets=SecretSet.of([SECRET]))

    assert SECRET not in str(raised.value)
    assert MASK in raised.value.message


_PARENT = """
import sys
from webmg_ops import process
process.run(
    ["/bin/sh", "-c", "echo $$ > " + sys.argv[1] + ".tmp; mv " + sys.argv[1] + ".tmp "
     + sys.argv[1] + "; exec sleep 60"],
    timeout=None,
    die_with_parent=sys.argv[2] == "yes",
)
"""


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_a_program_dies_with_its_parent_only_when_asked(
    tmp_path: Path, die_with_parent: bool
) -> None:
    pid_file = tmp_path / "child.pid"
    word = "yes" if die_with_parent else "no"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(pid_file), word])
    child = 0
    try:
        assert wait_until(pid_file.exists, timeout_s=30), "the child never started"
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait()
        if die_with_parent:
            assert wait_until(lambda: gone(child), timeout_s=30), "the child outlived its parent"
        else:
            assert not gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("own_session", [True, False])
def test_a_program_in_a_session_of_its_own_is_out_of_this_process_group(
    own_session: bool,
) -> None:
    # The program itself reads its /proc entry: fields 5 and 6 are its group and session.
    done = process.run(["cat", "/proc/self/stat"], timeout=30, own_session=own_session)
    fields = done.stdout.rsplit(")", 1)[1].split()
    group, session = int(fields[2]), int(fields[3])
    assert (session != os.getsid(0)) is own_session
    assert (group != os.getpgrp()) is own_session
