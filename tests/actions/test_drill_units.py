"""Restore drills refuse, before anything is written, what cannot open the repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.errors import ExitCode
from webmg_ops.lab.vault import write_vault_values
from webmg_ops.ledger import open_ledger


def test_a_drill_without_the_clients_keys_or_vault_writes_nothing(
    cli: Callable[..., Any], inventories: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBMG_VAULT_PASSWORD_FILE", raising=False)
    cli("ledger", "verify")  # creates the ledger
    # The copied inventories hold no SSH key: nothing can reach the backup target.
    done = cli("drill", "atelier-nord")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "ssh/id_ed25519 is missing" in done.err
    # With the key files present, the vault password is what is missing.
    (inventories / "atelier-nord" / "ssh").mkdir()
    (inventories / "atelier-nord" / "ssh" / "id_ed25519").write_text("not used\n")
    (inventories / "agency" / "known_hosts").write_text("")
    done = cli("drill", "atelier-nord")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "give the vault password" in done.err
    assert "Traceback" not in done.err
    with open_ledger(ledger_url, create=False, missing_ok=True) as ledger:
        assert [entry.kind for entry in ledger.entries(client="atelier-nord")] == []


def test_a_drill_of_an_s3_repository_without_its_keys_names_them_and_writes_nothing(
    cli: Callable[..., Any],
    inventories: Path,
    ledger_url: str,
    edit_contract: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = "s3:http://198.18.0.1:9000/webmg-backups/atelier-nord"
    edit_contract("atelier-nord", lambda data: data["backup"].update(repository=location))
    password_file = tmp_path / "vault-password"
    password_file.write_text("a vault password\n")
    password_file.chmod(0o600)
    monkeypatch.setenv("WEBMG_VAULT_PASSWORD_FILE", str(password_file))
    vault = inventories / "atelier-nord" / "group_vars" / "all" / "vault.yml"
    write_vault_values(
        vault,
        password_file,
        {"webmg_restic_password": "pw", "webmg_s3_access_key_id": "AKIDCANARY"},
    )
    cli("ledger", "verify")  # creates the ledger
    done = cli("drill", "atelier-nord")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "S3 repository: the vault lacks webmg_s3_secret_access_key" in done.err
    assert "AKIDCANARY" not in done.out + done.err
    assert "Traceback" not in done.err
    with open_ledger(ledger_url, create=False, missing_ok=True) as ledger:
        assert [entry.kind for entry in ledger.entries(client="atelier-nord")] == []
