"""Canonical JSON, UTC timestamps, hashes, checkpoints and kinds."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.ledger import json_values, payloads

from webmg_ops.errors import BadInput
from webmg_ops.ledger import (
    GENESIS_HASH,
    KNOWN_KINDS,
    LEGACY_FORMAT,
    Checkpoint,
    canonical_entry,
    canonical_json,
    chain_hash,
    format_utc,
    parse_checkpoint,
    parse_utc,
    validate_kind,
)

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_datetimes = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)


@given(json_values)
def test_canonical_json_round_trips(value: Any) -> None:
    assert json.loads(canonical_json(value)) == value


@given(json_values)
def test_canonical_json_is_sorted_compact_utf8_json(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected


@given(payloads)
def test_canonical_json_ignores_key_order(payload: dict[str, Any]) -> None:
    reordered = dict(reversed(list(payload.items())))
    assert canonical_json(reordered) == canonical_json(payload)


def test_canonical_json_keeps_text_as_utf8_and_escapes_controls() -> None:
    assert canonical_json({"b": "é\n", "a": [1, 2.5, None, True]}) == (
        '{"a":[1,2.5,null,true],"b":"é\\n"}'
    )


@given(aware_datetimes)
def test_datetimes_become_utc_text_with_z(moment: datetime) -> None:
    text = json.loads(canonical_json({"at": moment}))["at"]
    assert text.endswith("Z")
    assert len(text) == len("2024-05-01T08:30:00.000000Z")
    assert datetime.fromisoformat(text) == moment
    assert text == format_utc(moment.astimezone(UTC))


def test_utc_text_orders_as_time() -> None:
    early = datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))  # 08:00 UTC
    late = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    assert format_utc(early) < format_utc(late)
    assert format_utc(early) == "2024-05-01T08:00:00.000000Z"


@pytest.mark.parametrize(
    "value",
    [
        {"at": datetime(2024, 5, 1)},  # naive: which time zone?
        {"x": float("nan")},
        {"x": float("inf")},
        {1: "a"},
        {"nested": [{2: "b"}]},
        {"x": {1, 2}},
        {"x": "\ud800"},  # lone surrogate: no UTF-8 form
    ],
)
def test_canonical_json_refuses_what_has_no_single_form(value: Any) -> None:
    with pytest.raises(BadInput):
        canonical_json(value)


def test_tuples_are_arrays() -> None:
    assert canonical_json({"hosts": ("web1", "db1")}) == '{"hosts":["web1","db1"]}'


@given(
    seq=st.integers(min_value=1, max_value=10**12),
    kind=st.sampled_from(KNOWN_KINDS),
    client=st.none() | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    moment=aware_datetimes,
    actor=st.text(min_size=1, max_size=30),
    payload=payloads,
)
def test_canonical_entry_equals_canonical_json_of_the_entry(
    seq: int,
    kind: str,
    client: str | None,
    moment: datetime,
    actor: str,
    payload: dict[str, Any],
) -> None:
    at = format_utc(moment)
    entry = {"seq": seq, "kind": kind, "client": client, "at": at, "actor": actor}
    expected = canonical_json({**entry, "payload": payload})
    # Format 1: the form of every entry written before RFC 8785.
    assert (
        canonical_entry(seq, kind, client, at, actor, canonical_json(payload), LEGACY_FORMAT)
        == expected
    )


def test_chain_hash_is_sha256_of_prev_hash_then_entry() -> None:
    entry = '{"actor":"ana","payload":{"é":1},"seq":1}'
    expected = hashlib.sha256((GENESIS_HASH + entry).encode("utf-8")).hexdigest()
    assert chain_hash(GENESIS_HASH, entry) == expected
    assert GENESIS_HASH == "0" * 64


def test_checkpoint_prints_and_parses() -> None:
    checkpoint = Checkpoint(12, "ab" * 32)
    assert str(checkpoint) == "12:" + "ab" * 32
    assert parse_checkpoint(str(checkpoint)) == checkpoint
    assert parse_checkpoint(" 12:" + "AB" * 32 + "\n") == checkpoint


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12",
        "12:",
        ":" + "a" * 64,
        "0:" + "a" * 64,
        "-1:" + "a" * 64,
        "x:" + "a" * 64,
        "12:" + "a" * 63,
        "12:" + "g" * 64,
        "12:" + "a" * 65,
    ],
)
def test_malformed_checkpoints_are_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        parse_checkpoint(text)


@pytest.mark.parametrize("kind", [*KNOWN_KINDS, "incident", "approval-given", "a"])
def test_kinds_are_lowercase_words_and_hyphens(kind: str) -> None:
    assert validate_kind(kind) == kind


@pytest.mark.parametrize("kind", ["", "Run", "run_started", "run--x", "-run", "run-", "run 1", "é"])
def test_other_kinds_are_refused(kind: str) -> None:
    with pytest.raises(BadInput):
        validate_kind(kind)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T08:30:00Z", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00+02:00", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T08:30", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_parse_utc_reads_iso_times(text: str, expected: datetime) -> None:
    assert parse_utc(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "", "01/05/2024"])
def test_parse_utc_refuses_other_text(text: str) -> None:
    with pytest.raises(BadInput):
        parse_utc(text)
