"""The lab's ledger signing key: made by ``lab up`` with the lab's other keys, kept across ``up``.

A checkpoint of the lab's ledger signed with it verifies with its public key.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from support.lab import Lab

from webmg_ops.ledger import open_ledger

pytestmark = pytest.mark.lab


def test_up_makes_the_labs_signing_key_and_its_checkpoints_verify(lab: Lab, tmp_path: Path) -> None:
    status = lab.status()
    key, public = Path(status["signing_key"]), Path(status["signing_public_key"])
    assert key == lab.lab_dir / "identity" / "ledger-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    printed = public.read_text().strip()
    name, key_id, _encoded = printed.split("+", 2)
    assert name == "webmg-ops-lab"
    assert len(bytes.fromhex(key_id)) == 4

    with open_ledger(lab.settings.ledger_url):
        pass  # a checkpoint needs a ledger: the lab's exists once anything was recorded
    out = tmp_path / "checkpoint.txt"
    written = lab.cli(
        "ledger", "checkpoint", "--sign", "--key", str(key), "--output", str(out), "--json"
    )
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["file"] == str(out)
    assert out.read_text().splitlines()[-1].startswith(f"\u2014 {name} ")
    verified = lab.cli("ledger", "verify", "--checkpoint", str(out), "--key", str(public))
    assert verified.returncode == 0, verified.stderr


def test_up_again_keeps_the_signing_key(lab: Lab) -> None:
    """Checkpoints signed earlier must still verify: up never makes a second key."""
    key = Path(lab.status()["signing_key"])
    before = hashlib.sha256(key.read_bytes()).hexdigest()
    done = lab.cli("lab", "up", "--hosts", "backup1")
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(key.read_bytes()).hexdigest() == before
