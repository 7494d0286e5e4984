"""Files the tool writes are its owner's alone, and so is the vault password it reads.

Before, the ledger, facts and run folders took the caller's umask (0644
files under a usual 022), so any local account could read every client's
run logs and the ledger; a vault password file open to others was used as
it was.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.engine import add_unreachable_client

from webmg_ops.ansible.runner import Job, run_playbook
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.secrets import SecretSet

#: A client whose one host is a loopback port nothing listens on (the run fails at
#: its preflight, after writing its lock, ledger entries and run folder).
LOCAL_CLIENT = "local-shop"
#: An account that is not the one running the tests.
OTHER_UID = 65534


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """Run each test under the usual, lax umask: the tool must not depend on its caller's."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def local_client(inventories: Path) -> Path:
    """Add a client whose one host cannot be reached, with a window that is always closed."""
    return add_unreachable_client(inventories, LOCAL_CLIENT)


def _open_entries(root: Path) -> list[str]:
    """Given a folder, return what beneath it (itself included) group or others may use."""
    return [
        f"{path} {stat.S_IMODE(path.lstat().st_mode):04o}"
        for path in [root, *root.rglob("*")]
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]


def test_files_written_by_commands_are_private(
    cli: Callable[..., Any], var: Path, local_client: Path
) -> None:
    assert cli("validate").code == ExitCode.OK
    assert cli("note", LOCAL_CLIENT, "--text", "files are private").code == ExitCode.OK
    assert cli("ledger", "verify").code == ExitCode.OK
    assert cli("due").code == ExitCode.OK
    ran = cli("run", LOCAL_CLIENT, "check", "--emergency", "--reason", "modes")
    assert ran.code == ExitCode.FAILED, ran  # the host has no SSH: the preflight fails
    assert (var / "ledger.db").is_file()
    assert list((var / "runs").iterdir()), "the run wrote its folder"
    assert _open_entries(var) == []
    # The caller's umask is back once the command is done.
    assert os.umask(0o022) == 0o022


def test_an_open_var_folder_is_made_private(cli: Callable[..., Any], var: Path) -> None:
    # As an earlier version left it: folder 0755, ledger 0644.
    var.mkdir(mode=0o755)
    assert cli("note", "atelier-nord", "--text", "before").code == ExitCode.OK
    var.chmod(0o755)
    (var / "ledger.db").chmod(0o644)
    done = cli("ledger", "verify")
    assert done.code == ExitCode.OK, done
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert f"Notice: {var} was open to group or others (mode 0755)" in done.err
    # Nothing beneath a 0700 folder can be reached by another account.
    assert "Notice" not in cli("ledger", "verify").err


def test_a_var_folder_of_another_user_is_refused(cli: Callable[..., Any], var: Path) -> None:
    var.mkdir(mode=0o700)
    os.chown(var, OTHER_UID, OTHER_UID)
    done = cli("ledger", "verify")
    assert done.code == ExitCode.ENVIRONMENT, done
    assert f"Error: var folder {var} belongs to uid {OTHER_UID}" in done.err
    assert "Traceback" not in done.err
    assert list(var.iterdir()) == []


def _password_file(tmp_path: Path, mode: int, uid: int | None = None) -> Path:
    file = tmp_path / "vault-password"
    file.write_text("vault password canary 0123456789\n")
    file.chmod(mode)
    if uid is not None:
        os.chown(file, uid, uid)
    return file


@pytest.mark.parametrize(
    ("mode", "uid", "problem"),
    [
        (0o644, None, "is open to group or others (mode 0644): chmod 600 {file}"),
        (0o640, None, "is open to group or others (mode 0640): chmod 600 {file}"),
        (0o604, None, "is open to group or others (mode 0604): chmod 600 {file}"),
        (0o600, OTHER_UID, f"belongs to uid {OTHER_UID}, not to this user"),
    ],
)
def test_an_unsafe_vault_password_file_is_refused_and_nothing_is_written(
    cli: Callable[..., Any],
    var: Path,
    local_client: Path,
    ledger_url: str,
    tmp_path: Path,
    mode: int,
    uid: int | None,
    problem: str,
) -> None:
    assert cli("note", LOCAL_CLIENT, "--text", "before").code == ExitCode.OK
    with open_ledger(ledger_url, create=False) as ledger:
        before = ledger.head()
    assert before is not None
    file = _password_file(tmp_path, mode, uid)
    done = cli(
        "run", LOCAL_CLIENT, "check", "--emergency", "--reason", "x", "--vault-password-file", file
    )
    assert done.code == ExitCode.BAD_INPUT, done
    assert f"Error: vault password file {file} {problem.format(file=file)}" in done.err
    assert "canary" not in done.out + done.err
    with open_ledger(ledger_url, create=False) as ledger:
        assert ledger.head() == before
    assert not (var / "runs").exists()
    assert not (var / "locks").exists()


def test_a_private_vault_password_file_is_used(
    cli: Callable[..., Any], var: Path, local_client: Path, tmp_path: Path
) -> None:
    file = _password_file(tmp_path, 0o600)
    done = cli(
        "run", LOCAL_CLIENT, "check", "--emergency", "--reason", "x", "--vault-password-file", file
    )
    assert done.code == ExitCode.FAILED, done  # it went on to the hosts' preflight
    assert "vault password file" not in done.err


def test_a_ledger_made_outside_a_command_is_private(tmp_path: Path) -> None:
    # The lab and library callers open the ledger without the command line's umask.
    url = f"sqlite:///{tmp_path / 'var' / 'ledger.db'}"
    with open_ledger(url) as ledger:
        assert ledger.head() is None
    assert _open_entries(tmp_path / "var") == []
    (tmp_path / "var" / "ledger.db").chmod(0o644)
    with open_ledger(url):
        pass
    assert stat.S_IMODE((tmp_path / "var" / "ledger.db").stat().st_mode) == 0o600


@pytest.mark.tools
def test_facts_and_artifacts_of_a_play_are_private(tmp_path: Path) -> None:
    playbook = tmp_path / "facts.yml"
    playbook.write_text(
        yaml.safe_dump([{"name": "Gather", "hosts": "all", "gather_facts": True, "tasks": []}])
    )
    inventory = tmp_path / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local1": host}}}))
    var = tmp_path / "var"
    result = run_playbook(
        Job(
            run_id="run-facts",
            playbook=playbook,
            inventory=inventory,
            private_dir=var / "runs" / "run-facts" / "ansible",
            fact_cache=var / "facts" / "local-shop",
        ),
        ["local1"],
        SecretSet(),
    )
    assert result.ok, result
    assert list((var / "facts" / "local-shop").iterdir()), "the facts were cached"
    assert _open_entries(var) == []
