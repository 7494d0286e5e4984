"""A run records who ran it: ``WEBMG_OPERATOR``, else git's ``user.name``. With neither,
the run is refused as bad input (exit 2) and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.ledger import OPERATOR_VARIABLE, open_ledger, require_operator, resolve_actor

NO_OPERATOR = (
    "no operator to record: set WEBMG_OPERATOR to your name (for example export "
    "WEBMG_OPERATOR='Ana Lima') or git's user.name (git config --global user.name 'Ana Lima')"
)


@pytest.fixture
def nameless_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A git that names no user, and no WEBMG_OPERATOR; the login name stays set."""
    fake_git = tmp_path / "bin" / "git"
    fake_git.parent.mkdir()
    fake_git.write_text("#!/bin/sh\nexit 1\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_git.parent))
    monkeypatch.delenv(OPERATOR_VARIABLE, raising=False)
    monkeypatch.setenv("LOGNAME", "root")


def _entries(url: str) -> list[Any]:
    with open_ledger(url) as ledger:
        return list(ledger.entries())


@pytest.mark.usefixtures("nameless_git")
@pytest.mark.parametrize(
    "args",
    [
        ("run", "alpenhof", "check", "--reason", "monthly look"),
        ("diagnose", "alpenhof"),
        ("drill", "alpenhof"),
    ],
)
def test_a_run_without_an_operator_is_refused_and_writes_nothing(
    cli: Any, ledger_url: str, private_var: Path, args: tuple[str, ...]
) -> None:
    before = _entries(ledger_url)
    done = cli(*args)
    assert done.code == ExitCode.BAD_INPUT, done
    assert done.err.strip().replace("\n", " ") == f"Error: {NO_OPERATOR}"
    assert _entries(ledger_url) == before
    assert not (private_var / "runs").exists()
    assert not (private_var / "locks").exists()


@pytest.mark.usefixtures("nameless_git")
def test_a_login_name_is_no_operator_but_still_names_other_entries() -> None:
    """root or a shared account identifies nobody: a run wants a person. Entries outside a
    run (a note, a sample) still name the login rather than nobody."""
    with pytest.raises(BadInput) as refused:
        require_operator()
    assert refused.value.message == NO_OPERATOR
    assert resolve_actor() == "root"


def test_the_operator_comes_from_the_variable_then_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert require_operator({OPERATOR_VARIABLE: "  Ana  Lima "}) == "Ana Lima"
    fake_git = tmp_path / "bin" / "git"
    fake_git.parent.mkdir()
    fake_git.write_text("#!/bin/sh\necho 'Git User'\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_git.parent))
    assert require_operator({}) == "Git User"
    assert require_operator({OPERATOR_VARIABLE: " "}) == "Git User"
