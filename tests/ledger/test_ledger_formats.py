"""New entries are hashed in RFC 8785 (format 2); entries written before still verify (format 1).

The expected texts and hashes are computed here with the ``rfc8785`` library
and ``json``/``hashlib`` directly, not with the ledger's own composition.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from support.ledger import json_values, legacy_ledger, payloads, read_row, sqlite_url, tamper

from webmg_ops.errors import BadInput
from webmg_ops.ledger import (
    GENESIS_HASH,
    canonical_entry,
    export_entries,
    jcs_json,
    open_ledger,
    verify_ledger,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

#: Floats of every magnitude, whole ones and negative zero: where JSON writers differ most.
awkward_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e21, 1e-7, 123456789012345680.0, 5e-324, 0.1, 1e16, 1e15 + 0.5]
)
#: Keys beyond the Basic Multilingual Plane sort differently in UTF-16 (RFC 8785's order).
awkward_keys = st.text(max_size=6) | st.sampled_from(["\U0001f600", "\ue000", "a\U00010000", "ﬀ"])
awkward_values = st.recursive(
    awkward_floats | json_values,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(awkward_keys, children, max_size=4)
    ),
    max_leaves=12,
)


@given(awkward_values)
def test_jcs_json_is_rfc_8785(value: Any) -> None:
    """Whatever the value, the stored payload text is what an RFC 8785 implementation writes."""
    assert jcs_json(value) == rfc8785.dumps(value).decode()


@given(
    seq=st.integers(min_value=1, max_value=10**12),
    client=st.none() | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    actor=st.text(min_size=1, max_size=30),
    payload=payloads,
)
def test_a_new_entry_text_is_rfc_8785_of_the_entry_with_its_format(
    seq: int, client: str | None, actor: str, payload: dict[str, Any]
) -> None:
    """The hashed text of a format-2 entry is RFC 8785 of {seq, kind, client, at, actor,
    format, payload}: any JCS implementation recomputes it."""
    at = "2025-03-01T08:00:00.000000Z"
    entry: dict[str, Any] = {
        "seq": seq,
        "kind": "note",
        "client": client,
        "at": at,
        "actor": actor,
        "format": 2,
        "payload": payload,
    }
    text = canonical_entry(seq, "note", client, at, actor, jcs_json(payload), 2)
    assert text == rfc8785.dumps(entry).decode()


@pytest.mark.parametrize(
    "value",
    [{"big": 2**53}, {"small": -(2**53)}, {"x": float("nan")}, {"x": float("inf")}, {1: "a"}],
)
def test_values_rfc_8785_cannot_write_exactly_are_bad_input(value: Any) -> None:
    with pytest.raises(BadInput):
        jcs_json(value)


def test_an_appended_entry_hashes_its_rfc_8785_text(tmp_path: Path) -> None:
    """The stored payload and hash are those any RFC 8785 implementation gives."""
    payload: dict[str, Any] = {
        "duration_s": 12.0,
        "size": 1e21,
        "z": [1, 0.5],
        "\U0001f600": "x",
        "\ue000": "y",
    }
    with open_ledger(sqlite_url(tmp_path / "ledger.db")) as ledger:
        entry = ledger.append("note", "alpenhof", payload, actor="ana", at=T0)
    row = read_row(tmp_path / "ledger.db", 1)
    assert row["format"] == 2
    assert row["payload"] == rfc8785.dumps(payload).decode()
    hashed = rfc8785.dumps(
        {
            "seq": 1,
            "kind": "note",
            "client": "alpenhof",
            "at": "2025-03-01T08:00:00.000000Z",
            "actor": "ana",
            "format": 2,
            "payload": payload,
        }
    )
    assert entry.hash == row["hash"] == hashlib.sha256(GENESIS_HASH.encode() + hashed).hexdigest()


def test_entries_written_before_format_2_still_verify_after_the_upgrade(tmp_path: Path) -> None:
    """The migration marks old entries format 1; they verify next to new format-2 entries."""
    db_file = tmp_path / "ledger.db"
    old_hashes = legacy_ledger(db_file, 3)
    with open_ledger(sqlite_url(db_file)) as ledger:  # migrates to the newest revision
        new = ledger.append("note", "alpenhof", {"duration_s": 2.0}, actor="ana", at=T0)
        report = verify_ledger(ledger)
        entries = list(ledger.entries())
    assert report.ok, report
    assert report.entries_checked == 4
    assert [entry.hash for entry in entries[:3]] == old_hashes
    assert [entry.format for entry in entries] == [1, 1, 1, 2]
    assert new.prev_hash == old_hashes[-1]
    assert read_row(db_file, 2)["payload"] == '{"duration_s":2.0,"outcome":"succeeded","run":2}'
    assert read_row(db_file, 4)["payload"] == '{"duration_s":2}'


def test_the_format_is_hashed_so_changing_it_is_named(tmp_path: Path) -> None:
    """Relabelling an entry's format (either way) breaks the chain at that entry."""
    db_file = tmp_path / "ledger.db"
    legacy_ledger(db_file, 2)
    with open_ledger(sqlite_url(db_file)) as ledger:
        ledger.append("note", "alpenhof", {"n": 1}, actor="ana", at=T0)
    tamper(db_file, ("UPDATE ledger_entries SET format = 2 WHERE seq = 1", ()))
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert verify_ledger(ledger).first_bad_seq == 1
    tamper(
        db_file,
        ("UPDATE ledger_entries SET format = 1 WHERE seq = 1", ()),
        ("UPDATE ledger_entries SET format = 1 WHERE seq = 3", ()),
    )
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        assert verify_ledger(ledger).first_bad_seq == 3
    tamper(db_file, ("UPDATE ledger_entries SET format = 7 WHERE seq = 3", ()))
    with open_ledger(sqlite_url(db_file), create=False) as ledger:
        report = verify_ledger(ledger)
    assert report.first_bad_seq == 3
    assert report.reason is not None and "unknown entry format 7" in report.reason


def test_the_export_names_each_entrys_format(tmp_path: Path) -> None:
    """``ledger export`` gives the format of every entry, old and new."""
    db_file = tmp_path / "ledger.db"
    legacy_ledger(db_file, 2)
    with open_ledger(sqlite_url(db_file)) as ledger:
        ledger.append("note", None, {"n": 1.5}, actor="ana", at=T0)
        out = io.StringIO()
        export_entries(ledger, "jsonl", out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["format"] for line in lines] == [1, 1, 2]
