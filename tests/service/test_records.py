"""What is recorded outside runs goes through one module: notes, approvals, enrolments."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.service.records import (
    record_approval,
    record_derived,
    record_lab_enrolment,
    record_note,
)
from webmg_ops.settings import Settings

KEY_A = "ssh-ed25519 " + base64.b64encode(b"key a" * 7).decode()
KEY_B = "ssh-ed25519 " + base64.b64encode(b"key b" * 7).decode()


def fingerprint(key_text: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_text.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@pytest.fixture
def settings(inventories: Path, ledger_url: str, tmp_path: Path) -> Settings:
    return Settings(inventories=inventories, ledger_url=ledger_url, var_dir=tmp_path / "var")


def test_a_note_and_an_approval_are_recorded_with_what_was_said(settings: Settings) -> None:
    note = record_note(settings, "alpenhof", "season freeze agreed with the owner")
    approval = record_approval(settings, "riverton", "update", "M. Reed", "CHG-7")
    with open_ledger(settings.ledger_url, create=False) as ledger:
        entries = list(ledger.entries())
    assert [(e.seq, e.kind, e.client, e.payload) for e in entries] == [
        (note.seq, "note", "alpenhof", {"text": "season freeze agreed with the owner"}),
        (
            approval.seq,
            "approval",
            "riverton",
            {"action": "update", "by": "M. Reed", "note": "CHG-7"},
        ),
    ]


@pytest.mark.parametrize(
    ("client", "text", "message"),
    [("alpenhof", "   ", "--text is empty"), ("nobody", "a note", "nobody")],
)
def test_a_note_without_text_or_client_writes_nothing(
    settings: Settings, cli: Callable[..., Any], client: str, text: str, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        record_note(settings, client, text)
    done = cli("note", client, "--text", text)
    assert done.code == ExitCode.BAD_INPUT and message in done.err
    assert not Path(settings.ledger_url.removeprefix("sqlite:///")).exists()


def test_the_labs_enrolment_records_each_new_or_changed_key_once(settings: Settings) -> None:
    """Each host is named as alpenhof's inventory names it (alpenhof-db1 at 198.18.0.12,
    read here from hosts.yml); 198.18.0.13, which it does not name, by its address."""
    inventory = yaml.safe_load((settings.inventories / "alpenhof" / "hosts.yml").read_text())
    db = inventory["all"]["children"]["db"]["hosts"]
    ((db_name, db_vars),) = db.items()
    assert db_vars["ansible_host"] == "198.18.0.12"
    before = {"alpenhof": {"198.18.0.11": KEY_A, "198.18.0.12": KEY_A}}
    after = {"alpenhof": {"198.18.0.11": KEY_A, "198.18.0.12": KEY_B, "198.18.0.13": KEY_B}}
    recorded = record_lab_enrolment(settings, before, after)
    assert recorded == [f"alpenhof/{db_name}", "alpenhof/198.18.0.13"]
    with open_ledger(settings.ledger_url, create=False) as ledger:
        entries = [(e.kind, e.payload) for e in ledger.entries()]
    assert entries == [
        (
            "host-key-changed",
            {
                "host": db_name,
                "address": "198.18.0.12",
                "key_type": "ssh-ed25519",
                "fingerprint": fingerprint(KEY_B),
                "previous_fingerprint": fingerprint(KEY_A),
                "enrolled_by": "rehearsal lab",
            },
        ),
        (
            "host-enrolled",
            {
                "host": "198.18.0.13",
                "address": "198.18.0.13",
                "key_type": "ssh-ed25519",
                "fingerprint": fingerprint(KEY_B),
                "previous_fingerprint": None,
                "enrolled_by": "rehearsal lab",
            },
        ),
    ]
    # Nothing changed since: nothing more is recorded.
    assert record_lab_enrolment(settings, after, after) == []


def test_the_labs_enrolment_of_a_client_it_cannot_load_names_the_host_by_address(
    settings: Settings,
) -> None:
    (settings.inventories / "alpenhof" / "client.yml").write_text("name: [unclosed\n")
    recorded = record_lab_enrolment(settings, {}, {"alpenhof": {"198.18.0.11": KEY_A}})
    assert recorded == ["alpenhof/198.18.0.11"]
    with open_ledger(settings.ledger_url, create=False) as ledger:
        (entry,) = ledger.entries()
    assert (entry.payload["host"], entry.payload["address"]) == ("198.18.0.11", "198.18.0.11")


def test_a_derived_entry_is_decided_from_the_clients_entries_of_the_kinds_asked(
    settings: Settings,
) -> None:
    record_note(settings, "alpenhof", "first")
    record_note(settings, "riverton", "another client's")
    record_approval(settings, "alpenhof", "update", "M. Reed", "not a note")
    seen: list[list[str]] = []

    def count_notes(history: Sequence[Entry]) -> list[NewEntry]:
        seen.append([entry.payload["text"] for entry in history])
        return [NewEntry("note", "alpenhof", {"text": f"note {len(history) + 1}"})]

    (made,) = record_derived(settings, "alpenhof", ["note"], count_notes)
    assert seen == [["first"]]
    assert (made.kind, made.client, made.payload) == ("note", "alpenhof", {"text": "note 2"})


def test_a_refused_derivation_writes_nothing(settings: Settings) -> None:
    record_note(settings, "alpenhof", "first")

    def refuse(history: Sequence[Entry]) -> list[NewEntry]:
        raise BadInput("out of order")

    with pytest.raises(BadInput, match="out of order"):
        record_derived(settings, "alpenhof", ["note"], refuse)
    with pytest.raises(BadInput, match="nobody"):
        record_derived(settings, "nobody", ["note"], refuse)
    with open_ledger(settings.ledger_url, create=False) as ledger:
        assert [entry.payload["text"] for entry in ledger.entries()] == ["first"]
