"""Bootstrap's input: every bad request is refused with a clear message, exit 2, before any
host is reached and with nothing written; the command it sends is the fixed script.

The lab tests (``test_bootstrap_lab.py``) prove what the script does on a server.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from support.cli_result import CliResult

from webmg_ops.remote.first_contact import PREPARE_SCRIPT, Login, prepare_command
from webmg_ops.remote.keys import generate_key_pair

Run = Callable[..., CliResult]


@pytest.fixture
def client_key(inventories: Path) -> str:
    """Give atelier-nord a key pair (the inventories copy has none); return its body."""
    line = generate_key_pair(inventories / "atelier-nord" / "ssh" / "id_ed25519", "test")
    return line.split()[1]


@pytest.fixture
def login_key(tmp_path: Path) -> Path:
    """Return a private key file standing for the one a client gave."""
    key = tmp_path / "given" / "id_ed25519"
    generate_key_pair(key, "given")
    return key


def _refused(result: CliResult, *words: str) -> None:
    assert result.code == 2, result
    assert "Traceback" not in result.err
    for word in words:
        assert word in result.err, result


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nobody", "--user", "root", "--ask-pass"), ("nobody",)),
        (
            ("atelier-nord", "atelier-web9", "--user", "root", "--ask-pass"),
            ("no host atelier-web9",),
        ),
        (("atelier-nord", "--user", "root", "--ask-pass", "--accept", "MD5:aa"), ("SHA256",)),
        (("atelier-nord", "--user", "root;reboot", "--ask-pass"), ("not a user name",)),
        (("atelier-nord", "--user", "root"), ("--key FILE", "--ask-pass")),
    ],
    ids=["unknown client", "unknown host", "bad fingerprint", "bad user", "no credentials"],
)
def test_a_bad_request_is_refused_before_any_host_is_reached(
    cli: Run,
    ledger_url: str,
    client_key: str,
    args: tuple[str, ...],
    words: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # --ask-pass reads the first line of a standard input that is not a terminal.
    monkeypatch.setattr("sys.stdin", _Lines("secret-password\n"))
    result = cli("bootstrap", *args)
    _refused(result, *words)
    assert "secret-password" not in result.out + result.err
    assert not Path(ledger_url.removeprefix("sqlite:///")).exists()


def test_key_and_password_together_are_refused(cli: Run, client_key: str, login_key: Path) -> None:
    _refused(
        cli("bootstrap", "atelier-nord", "--user", "root", "--key", str(login_key), "--ask-pass"),
        "not both",
    )


def test_a_missing_login_key_is_refused(cli: Run, client_key: str, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    _refused(
        cli("bootstrap", "atelier-nord", "--user", "root", "--key", str(missing)),
        str(missing),
    )


def test_a_client_without_its_key_is_told_where_it_comes_from(
    cli: Run, login_key: Path, ledger_url: str
) -> None:
    # The inventories copy holds no ssh/ folder: the client's key was never made.
    result = cli("bootstrap", "atelier-nord", "--user", "root", "--key", str(login_key))
    _refused(result, "id_ed25519 is missing", "client new")
    assert not Path(ledger_url.removeprefix("sqlite:///")).exists()


def test_a_maintenance_account_named_root_is_refused(
    cli: Run, inventories: Path, client_key: str, login_key: Path
) -> None:
    main = inventories / "atelier-nord" / "group_vars" / "all" / "main.yml"
    main.write_text(main.read_text().replace("ansible_user: webmg", "ansible_user: root"))
    assert "ansible_user: root" in main.read_text()
    result = cli("bootstrap", "atelier-nord", "--user", "root", "--key", str(login_key))
    _refused(result, "maintenance account (ansible_user) is 'root'")


def _script_argv(command: str) -> list[str]:
    words = shlex.split(command)
    return words[words.index("sh") :]


def test_root_runs_the_fixed_script_directly(client_key: str) -> None:
    command = prepare_command(Login("root", Path("key")), "webmg", client_key)
    assert _script_argv(command) == ["sh", "-c", PREPARE_SCRIPT, "webmg-ops-bootstrap", "webmg",
                                     client_key]  # fmt: skip
    assert not command.startswith("sudo")


def test_a_sudo_user_with_a_password_gives_it_on_sudo_s_input_never_in_the_command(
    client_key: str,
) -> None:
    login = Login("installer", None, "hunter2-password")
    command = prepare_command(login, "webmg", client_key)
    assert shlex.split(command)[:4] == ["sudo", "-S", "-p", ""]
    assert "hunter2-password" not in command
    assert "hunter2-password" not in repr(login)
    assert login.method == "password"


def test_a_sudo_user_with_a_key_never_waits_for_a_password(client_key: str) -> None:
    command = prepare_command(Login("installer", Path("key")), "webmg", client_key)
    assert shlex.split(command)[:2] == ["sudo", "-n"]
    assert Login("installer", Path("key")).method == "key"


@pytest.mark.parametrize("account", ["root", "Webmg", "web mg", "-webmg", "a" * 33, ""])
def test_an_unsafe_account_name_is_never_sent(client_key: str, account: str) -> None:
    with pytest.raises(ValueError, match="cannot be a maintenance account"):
        prepare_command(Login("root", Path("key")), account, client_key)


@pytest.mark.parametrize(
    "body",
    ["AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 42 + ";", ""],
    ids=["rsa", "injected", "empty"],
)
def test_a_key_that_is_not_ed25519_is_never_sent(body: str) -> None:
    with pytest.raises(ValueError, match="not an ed25519 public key"):
        prepare_command(Login("root", Path("key")), "webmg", body)


class _Lines:
    """A standard input that is not a terminal and holds the given text."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""
