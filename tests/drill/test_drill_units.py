"""Restore drills refuse, before anything is written, what cannot open the repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.errors import ExitCode
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
    (inventories / "atelier-nord" / "known_hosts").write_text("")
    done = cli("drill", "atelier-nord")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "give the vault password" in done.err
    assert "Traceback" not in done.err
    with open_ledger(ledger_url, create=False) as ledger:
        assert [entry.kind for entry in ledger.entries(client="atelier-nord")] == []
