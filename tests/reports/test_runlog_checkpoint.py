"""Run logs carry the signed checkpoint of their last entry.

A client keeping a run log can check, without trusting the agency, that the history up
to that run is still the one the agency signed. The note is checked here by hand: its
three lines parsed, the hash compared with the entry's, the Ed25519 signature verified
with the public key the test made, not with the product's own checker.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from support.run_entries import (
    RUN_ID,
    finished_entry,
    refused_entry,
    started_entry,
)

from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import Contract
from webmg_ops.ledger.note import (
    DEFAULT_ORIGIN,
    generate_signing_key,
    public_key_path,
    write_signing_key,
)
from webmg_ops.ledger.records import Entry
from webmg_ops.reports import render_refusal_log, render_run_log, run_log_dir

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"

KEY_NAME = "agency.example"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_client(INVENTORIES, "alpenhof").contract


@pytest.fixture(autouse=True)
def _no_named_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The key is looked for in the var folder given to the renderer, nowhere else.
    monkeypatch.delenv("WEBMG_SIGNING_KEY", raising=False)
    monkeypatch.delenv("WEBMG_LEDGER_ORIGIN", raising=False)


def _key_file(var_dir: Path) -> Path:
    return var_dir / "keys" / "ledger-signing.key"


def _signed_by(note: str, entry: Entry, public: bytes) -> bool:
    body, _, signatures = note.partition("\n\n")
    origin, seq, root = body.split("\n")
    assert (origin, int(seq)) == (DEFAULT_ORIGIN, entry.seq)
    assert base64.b64decode(root) == bytes.fromhex(entry.hash)
    ((dash, name, blob),) = [line.split(" ") for line in signatures.splitlines()]
    assert (dash, name) == ("\u2014", KEY_NAME)
    raw = base64.b64decode(blob)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (body + "\n").encode())
    except InvalidSignature:
        return False
    return True


def test_a_run_log_carries_its_last_entry_signed_by_the_agency(
    tmp_path: Path, contract: Contract
) -> None:
    key = generate_signing_key(KEY_NAME)
    write_signing_key(_key_file(tmp_path), key)
    public = key.private_key.public_key().public_bytes_raw()
    started = started_entry()
    finished = finished_entry(started)
    files = render_run_log(started, finished, contract, tmp_path)
    note_file = run_log_dir(tmp_path, RUN_ID) / "checkpoint.txt"
    note = note_file.read_text()
    assert _signed_by(note, finished, public)
    assert stat.S_IMODE(note_file.stat().st_mode) == 0o600
    command = (
        f"webmg-ops ledger verify --checkpoint {note_file} "
        f"--key {public_key_path(_key_file(tmp_path))}"
    )
    markdown, html = files.markdown.read_text(), files.html.read_text()
    for text in (markdown, html):
        assert command in text
        assert "signed by the agency's key" in text
        assert note.splitlines()[-1] in text
    assert key.encode() not in markdown + html + note


def test_without_a_key_the_note_is_written_unsigned(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    files = render_run_log(started, None, contract, tmp_path)
    note = (run_log_dir(tmp_path, RUN_ID) / "checkpoint.txt").read_text()
    # In progress: the last proof is the run-started entry.
    root = base64.b64encode(bytes.fromhex(started.hash)).decode()
    assert note == f"{DEFAULT_ORIGIN}\n{started.seq}\n{root}\n"
    html = files.html.read_text()
    assert "unsigned (the agency keeps no signing key)" in html
    assert "--key" not in html


def test_a_key_open_to_others_leaves_the_log_written_and_unsigned(
    tmp_path: Path, contract: Contract
) -> None:
    write_signing_key(_key_file(tmp_path), generate_signing_key(KEY_NAME))
    _key_file(tmp_path).chmod(0o644)
    started = started_entry()
    files = render_run_log(started, finished_entry(started), contract, tmp_path)
    html = files.html.read_text()
    assert "unsigned (signing key" in html
    assert "make it 0600" in html
    assert "\u2014 " not in (run_log_dir(tmp_path, RUN_ID) / "checkpoint.txt").read_text()


def test_a_refusal_log_carries_the_refusal_signed(tmp_path: Path, contract: Contract) -> None:
    key = generate_signing_key(KEY_NAME)
    write_signing_key(_key_file(tmp_path), key)
    refused = refused_entry()
    render_refusal_log(refused, contract, tmp_path, RUN_ID)
    note = (run_log_dir(tmp_path, RUN_ID) / "checkpoint.txt").read_text()
    assert _signed_by(note, refused, key.private_key.public_key().public_bytes_raw())


def test_another_key_does_not_verify(tmp_path: Path, contract: Contract) -> None:
    write_signing_key(_key_file(tmp_path), generate_signing_key(KEY_NAME))
    started = started_entry()
    finished = finished_entry(started)
    render_run_log(started, finished, contract, tmp_path)
    note = (run_log_dir(tmp_path, RUN_ID) / "checkpoint.txt").read_text()
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert not _signed_by(note, finished, stranger)
