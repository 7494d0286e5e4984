"""``client new`` writes a new client's folder: a contract that validates, an inventory
waiting for its hosts, a fresh key pair and an encrypted vault; a refusal writes nothing.

Expectations are computed here, independently of the scaffold: the contract is read
back as plain YAML, the vault decrypted with the password the test chose, the key
loaded with the cryptography library and checked against its public half.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from webmg_ops.ansible.vault import decrypt_bytes
from webmg_ops.config import scaffold

VAULT_PASSWORD = "client-new vault password 7f3a"
#: What secrets.token_urlsafe(32) gives: 32 bytes in unpadded base64url, 43 characters.
RESTIC_PASSWORD = re.compile(r"[A-Za-z0-9_-]{43}")
SECTORS = ("hotel", "ngo", "education", "government", "sme")
LEVELS = ("stability-security", "continuous-evolution", "institutional-sla")
#: Every file a new client holds, relative to its folder.
EXPECTED_FILES = {
    "client.yml",
    "hosts.yml",
    "group_vars/all/main.yml",
    "group_vars/all/vault.yml",
    "ssh/id_ed25519",
    "ssh/id_ed25519.pub",
}


@pytest.fixture
def vault_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return the vault password file the commands get through the environment (0600)."""
    file = tmp_path / "vault-password"
    file.write_text(VAULT_PASSWORD + "\n")
    file.chmod(0o600)
    monkeypatch.setenv("WEBMG_VAULT_PASSWORD_FILE", str(file))
    return file


def tree(folder: Path) -> set[str]:
    """Return every path under FOLDER (hidden ones too), relative to it."""
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def add_example_hosts(folder: Path) -> None:
    """Uncomment the example hosts of a new client's hosts.yml, as a user fills it in."""
    inventory = folder / "hosts.yml"
    text = inventory.read_text()
    filled = re.sub(r"^(\s+)# ", r"\1", text, flags=re.MULTILINE)
    assert filled != text, "hosts.yml holds no commented example host"
    inventory.write_text(filled)


def restic_password_of(folder: Path) -> str:
    plain = decrypt_bytes(
        (folder / "group_vars/all/vault.yml").read_bytes(), VAULT_PASSWORD.encode()
    )
    assert plain is not None, "the vault password does not decrypt the vault"
    values = yaml.safe_load(plain)
    assert set(values) == {"webmg_restic_password"}
    return str(values["webmg_restic_password"])


@pytest.mark.parametrize("sector", SECTORS)
def test_a_prospect_validates_once_its_hosts_are_added(
    cli: Callable[..., object], inventories: Path, vault_file: Path, sector: str
) -> None:
    done = cli("client", "new", "acme", "--sector", sector)
    assert done.code == 0, done
    folder = inventories / "acme"
    contract = yaml.safe_load((folder / "client.yml").read_text())
    assert contract["name"] == "acme" and contract["sector"] == sector
    assert "level" not in contract, "a client without --level is a prospect"
    assert "TODO" not in (folder / "client.yml").read_text()
    # Right after scaffolding, the one problem is the inventory waiting for its hosts.
    waiting = cli("validate", "acme")
    assert waiting.code == 2, waiting
    assert "1 problem found" in waiting.err
    assert f"{folder / 'hosts.yml'}:1: the inventory lists no hosts" in waiting.err
    add_example_hosts(folder)
    valid = cli("validate", "acme")
    assert valid.code == 0, valid
    listed = {row["client"]: row for row in json.loads(cli("clients", "--json").out)}
    assert listed["acme"]["level"] == "prospect"
    assert listed["acme"]["sector"] == sector
    assert listed["acme"]["hosts"] == ["acme-db1", "acme-web1"]


@pytest.mark.parametrize("level", LEVELS)
def test_a_level_gives_a_contract_with_owner_and_window_that_validates(
    cli: Callable[..., object], inventories: Path, vault_file: Path, level: str
) -> None:
    done = cli("client", "new", "civic-7", "--sector", "government", "--level", level)
    assert done.code == 0, done
    folder = inventories / "civic-7"
    contract = yaml.safe_load((folder / "client.yml").read_text())
    assert contract["level"] == level
    assert contract["business_owner"]["email"].endswith(".example")
    assert len(contract["windows"]) == 1
    add_example_hosts(folder)
    assert cli("validate", "civic-7").code == 0
    policy = json.loads(cli("policy", "civic-7", "--json").out)
    assert policy["level"] == level


def test_the_sectors_preset_is_named_in_the_contracts_comments(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    assert cli("client", "new", "seaview", "--sector", "hotel").code == 0
    text = (inventories / "seaview" / "client.yml").read_text()
    assert "checks.mobile_page_weight: yes" in text
    assert "freeze 'summer season': every year, 1 Jul → 31 Aug" in text
    assert "page_weight_kb" in text


@pytest.mark.parametrize("level", [None, *LEVELS])
def test_a_new_client_passes_the_projects_yamllint(
    cli: Callable[..., object], inventories: Path, vault_file: Path, level: str | None
) -> None:
    # Committed to the agency's repository, the folder must keep `make lint` green.
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    extra = ("--level", level) if level else ()
    for sector in SECTORS:
        assert cli("client", "new", f"new-{sector}", "--sector", sector, *extra).code == 0
    config = YamlLintConfig(file=str(Path(__file__).resolve().parents[2] / ".yamllint"))
    problems = [
        f"{file}:{problem.line}: {problem.desc}"
        for file in sorted(inventories.glob("new-*/**/*.yml"))
        for problem in linter.run(file.read_text(), config, str(file))
    ]
    assert problems == []


def test_the_vault_holds_a_new_restic_password_for_the_given_vault_password(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    assert cli("client", "new", "first", "--sector", "sme").code == 0
    assert cli("client", "new", "second", "--sector", "sme").code == 0
    first = restic_password_of(inventories / "first")
    second = restic_password_of(inventories / "second")
    assert RESTIC_PASSWORD.fullmatch(first) and RESTIC_PASSWORD.fullmatch(second)
    assert first != second, "each client gets a password of its own"
    vault = inventories / "first" / "group_vars/all/vault.yml"
    assert vault.read_bytes().startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    assert first.encode() not in vault.read_bytes()
    assert decrypt_bytes(vault.read_bytes(), b"another password") is None
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600


def test_the_key_pair_is_a_new_ed25519_pair_readable_by_its_owner_only(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    done = cli("client", "new", "acme", "--sector", "ngo", "--json")
    assert done.code == 0, done
    ssh = inventories / "acme" / "ssh"
    private = serialization.load_ssh_private_key((ssh / "id_ed25519").read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    key_type, key_data, comment = (ssh / "id_ed25519.pub").read_text().split()
    assert f"{key_type} {key_data}".encode() == public
    assert key_type == "ssh-ed25519" and comment == "webmg-ops-acme"
    assert json.loads(done.out)["public_key"] == f"{key_type} {key_data} {comment}"
    assert stat.S_IMODE((ssh / "id_ed25519").stat().st_mode) == 0o600
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o700
    assert cli("client", "new", "other", "--sector", "ngo").code == 0
    other = (inventories / "other" / "ssh" / "id_ed25519.pub").read_text().split()[1]
    assert other != key_data, "each client gets a key of its own"


def test_json_names_every_file_written_and_nothing_else_is(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    before = tree(inventories)
    done = cli("client", "new", "acme", "--sector", "education", "--json")
    assert done.code == 0, done
    document = json.loads(done.out)
    folder = inventories / "acme"
    assert document["client"] == "acme" and document["folder"] == str(folder)
    assert document["level"] is None
    assert {Path(file).relative_to(folder).as_posix() for file in document["files"]} == (
        EXPECTED_FILES
    )
    written = tree(inventories) - before
    assert {path for path in written if path.split("/")[0] != "acme"} == set()
    files = {path.removeprefix("acme/") for path in written if (inventories / path).is_file()}
    assert files == EXPECTED_FILES


def test_the_next_steps_lead_from_the_contract_to_the_first_drill(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    done = cli("client", "new", "acme", "--sector", "sme")
    assert done.code == 0, done
    assert done.out == ""
    steps = done.err[done.err.index("Next steps:") :]
    public_key = (inventories / "acme" / "ssh" / "id_ed25519.pub").read_text().strip()
    expected_in_order = [
        "fill client.yml",
        "add your hosts to hosts.yml, then validate: webmg-ops validate acme",
        "webmg-ops bootstrap acme --user root --key FILE",
        "passwordless sudo",
        public_key,
        "webmg-ops enroll acme",
        "webmg-ops diagnose acme",
        "choose the level",
        "webmg-ops run acme backup",
        "webmg-ops drill acme",
    ]
    positions = [steps.find(text) for text in expected_in_order]
    assert -1 not in positions, dict(zip(expected_in_order, positions, strict=True))
    assert positions == sorted(positions)


def test_no_secret_reaches_the_output(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    human = cli("client", "new", "acme", "--sector", "hotel")
    machine = cli(
        "client", "new", "beta", "--sector", "hotel", "--level", "institutional-sla", "--json"
    )
    assert human.code == 0 and machine.code == 0
    for name, result in (("acme", human), ("beta", machine)):
        folder = inventories / name
        private_body = "".join((folder / "ssh" / "id_ed25519").read_text().splitlines()[1:-1])
        output = result.out + result.err
        for secret in (restic_password_of(folder), VAULT_PASSWORD, private_body[:40]):
            assert secret not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("alpenhof", "--sector", "hotel"), "already exists"),
        (("Acme", "--sector", "sme"), "invalid client name 'Acme'"),
        (("../acme", "--sector", "sme"), "invalid client name '../acme'"),
        (("acme_shop", "--sector", "sme"), "invalid client name 'acme_shop'"),
        (("--sector", "sme", "--", "-acme"), "invalid client name '-acme'"),
        (("a" * 64, "--sector", "sme"), f"invalid client name '{'a' * 64}'"),
        (("acme", "--sector", "bakery"), "Invalid value for '--sector'"),
        (("acme", "--sector", "sme", "--level", "gold"), "Invalid value for '--level'"),
        (("acme",), "Missing option '--sector'"),
    ],
)
def test_a_refusal_exits_2_with_its_reason_and_writes_nothing(
    cli: Callable[..., object],
    inventories: Path,
    vault_file: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    before = tree(inventories)
    contract = (inventories / "alpenhof" / "client.yml").read_bytes()
    done = cli("client", "new", *args)
    assert done.code == 2, done
    assert message in done.err
    assert tree(inventories) == before
    assert (inventories / "alpenhof" / "client.yml").read_bytes() == contract


def test_a_file_at_the_name_is_refused(
    cli: Callable[..., object], inventories: Path, vault_file: Path
) -> None:
    (inventories / "acme").write_text("notes\n")
    before = tree(inventories)
    done = cli("client", "new", "acme", "--sector", "sme")
    assert done.code == 2, done
    assert f"{inventories / 'acme'} already exists" in done.err
    assert tree(inventories) == before


def test_without_a_usable_vault_password_nothing_is_written(
    cli: Callable[..., object], inventories: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree(inventories)
    monkeypatch.delenv("WEBMG_VAULT_PASSWORD_FILE", raising=False)
    missing = cli("client", "new", "acme", "--sector", "sme")
    assert missing.code == 2, missing
    assert "--vault-password-file or WEBMG_VAULT_PASSWORD_FILE" in missing.err
    open_file = tmp_path / "open-password"
    open_file.write_text("secret\n")
    open_file.chmod(0o644)
    opened = cli(
        "client", "new", "acme", "--sector", "sme", "--vault-password-file", str(open_file)
    )
    assert opened.code == 2, opened
    assert "is open to group or others" in opened.err
    empty = tmp_path / "empty-password"
    empty.write_text("\n")
    empty.chmod(0o600)
    emptied = cli("client", "new", "acme", "--sector", "sme", "--vault-password-file", str(empty))
    assert emptied.code == 2, emptied
    assert "the vault password file is empty" in emptied.err
    assert tree(inventories) == before


def test_a_failure_while_writing_leaves_nothing_behind(
    cli: Callable[..., object],
    inventories: Path,
    vault_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full_disk(_path: Path, _comment: str) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scaffold, "generate_key_pair", full_disk)
    before = tree(inventories)
    done = cli("client", "new", "acme", "--sector", "sme")
    assert done.code == 4, done
    assert f"cannot write {inventories / 'acme'}: No space left on device" in done.err
    assert tree(inventories) == before
