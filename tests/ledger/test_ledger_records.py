"""The ledger's records: what an entry may name (kind, client, actor), checkpoints as
printed and read back, hashes as stored, corrections, and the canonical text and times
that the hash chain is computed from, at the edges of each rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from support.clock import controller_zone

from webmg_ops.errors import BadInput
from webmg_ops.ledger import (
    Checkpoint,
    Entry,
    NewEntry,
    canonical_entry,
    canonical_json,
    format_utc,
    make_correction,
    parse_checkpoint,
    parse_utc,
    validate_kind,
)
from webmg_ops.ledger.records import is_hash, validate_actor, validate_client

HASH = "0123456789abcdef" * 4


def test_a_kind_of_up_to_64_characters_is_accepted() -> None:
    """Kinds are lowercase words and hyphens of at most 64 characters, named when refused."""
    longest = "-".join(["abcdefg"] * 8)  # 8 words of 7 letters and 7 hyphens: 63
    assert validate_kind(longest + "x") == longest + "x"
    with pytest.raises(BadInput, match=r"entry kind '.*xy' must be lowercase words"):
        validate_kind(longest + "xy")
    with pytest.raises(BadInput, match="entry kind 5 must be"):
        validate_kind(5)  # type: ignore[arg-type]


def test_a_client_name_of_up_to_128_characters_is_accepted() -> None:
    """Client names are letters, digits, dots, hyphens and underscores, at most 128 of them;
    None is a global entry."""
    assert validate_client(None) is None
    assert validate_client("atelier-nord.eu_2") == "atelier-nord.eu_2"
    assert validate_client("c" * 128) == "c" * 128
    with pytest.raises(BadInput, match=r"client 'c{129}' must be letters.*at most 128 characters"):
        validate_client("c" * 129)
    for bad in ("", "-leading", "with space", "naïve"):
        with pytest.raises(BadInput, match="must be letters, digits"):
            validate_client(bad)


@pytest.mark.parametrize("actor", ["a", "ana@agency", "x" * 200, "Ana Müller (ops)"])
def test_an_actor_of_1_to_200_printable_characters_is_accepted(actor: str) -> None:
    assert validate_actor(actor) == actor


@pytest.mark.parametrize("actor", ["", "x" * 201, " ana", "ana ", "an\ta", "an\x07a", "a\nb"])
def test_other_actors_are_refused_saying_what_an_actor_is(actor: str) -> None:
    with pytest.raises(BadInput, match=r"must be printable text .*\(1 to 200 characters\)"):
        validate_actor(actor)


def test_a_malformed_checkpoint_says_how_to_get_one() -> None:
    """The refusal of a checkpoint names the command that prints one."""
    with pytest.raises(
        BadInput, match=r"'12' must be SEQ:HASH.*\(as printed by 'webmg-ops ledger head'\)$"
    ):
        parse_checkpoint("12")


def test_a_checkpoint_reads_its_seq_and_lowercases_its_hash() -> None:
    assert parse_checkpoint("7:" + HASH.upper()) == Checkpoint(seq=7, hash=HASH)
    assert parse_checkpoint("120:" + HASH).seq == 120


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HASH, True),
        (HASH.upper(), False),
        (HASH[:-1], False),
        (HASH + "0", False),
        ("g" * 64, False),
        ("not a hash", False),
        (64, False),
        (None, False),
    ],
)
def test_a_stored_hash_is_64_lowercase_hex_digits(value: object, expected: bool) -> None:
    assert is_hash(value) is expected


def _entry(**changes: Any) -> Entry:
    fields: dict[str, Any] = {
        "seq": 41,
        "kind": "run-finished",
        "client": "atelier-nord",
        "at": datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
        "actor": "ana",
        "payload_json": '{"outcome":"ok","run":3}',
        "prev_hash": "0" * 64,
        "hash": HASH,
    }
    return Entry(**{**fields, **changes})


def test_a_correction_restates_the_entry_with_its_payload_seq_and_reason() -> None:
    """A correction keeps the original's kind and client, carries the corrected payload,
    the seq it corrects and the (trimmed) reason, by the given actor, at the time of writing."""
    correction = make_correction(
        _entry(), {"outcome": "failed", "run": 3}, reason="  restore test failed ", actor="bo"
    )
    assert correction == NewEntry(
        kind="run-finished",
        client="atelier-nord",
        payload={"outcome": "failed", "run": 3, "corrects": 41, "reason": "restore test failed"},
        actor="bo",
        at=None,
    )
    assert make_correction(_entry(client=None), {}, reason="r").client is None


def test_a_correction_without_a_reason_or_over_its_own_keys_is_refused() -> None:
    with pytest.raises(BadInput, match=r"^a correction needs a reason$"):
        make_correction(_entry(), {"outcome": "failed"}, reason=" \n")
    with pytest.raises(BadInput, match=r"must not set \['corrects', 'reason'\]"):
        make_correction(_entry(), {"reason": "x", "corrects": 3, "ok": 1}, reason="why")


def test_a_correction_names_the_entry_it_corrects() -> None:
    """An entry's ``corrects`` is the seq it names, an integer only."""
    assert _entry(payload_json='{"corrects":12,"reason":"r"}').corrects == 12
    assert _entry(payload_json='{"corrects":true}').corrects is None
    assert _entry(payload_json='{"corrects":"12"}').corrects is None
    assert _entry().corrects is None


# Canonical text and times: what the chain's hashes are computed from.


def test_a_naive_or_unrepresentable_time_is_refused_naming_it() -> None:
    with pytest.raises(BadInput, match=r"^naive datetime 2024-05-01T08:30:00 has no time zone$"):
        format_utc(datetime(2024, 5, 1, 8, 30))
    ahead = timezone(timedelta(hours=-1))
    with pytest.raises(BadInput, match=r"^datetime 9999-12-31T23:30:00-01:00 is out of range"):
        format_utc(datetime(9999, 12, 31, 23, 30, tzinfo=ahead))


def test_a_time_east_of_utc_is_written_earlier_in_utc() -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    assert format_utc(datetime(2024, 5, 1, 8, 30, tzinfo=east)) == "2024-05-01T03:00:00.000000Z"


@pytest.fixture
def machine_in_paris() -> Iterator[None]:
    """The controller's local time zone is Paris (not UTC) for the test."""
    with controller_zone("Europe/Paris"):
        yield


def test_a_time_without_offset_is_utc_whatever_the_machines_zone(machine_in_paris: None) -> None:
    assert parse_utc(" 2024-05-01T08:30 ") == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert parse_utc("2024-05-01T10:30+02:00").tzinfo is UTC
    with pytest.raises(BadInput, match=r"^'soon' is not an ISO-8601 time \(e\.g\. 2024-05-01"):
        parse_utc("soon")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": {1, 2}}, "^not canonical JSON: a set is not a JSON value$"),
        ([{"a": 1}, {2: "b"}], "^JSON object key 2 is not a string$"),
        ({"a": {"b": [{3: "c"}]}}, "^JSON object key 3 is not a string$"),
        ({"a": ({"b": {4: "c"}},)}, "^JSON object key 4 is not a string$"),
        ({"x": "é\ud800"}, "^not canonical JSON: .*surrogate"),
    ],
)
def test_a_value_without_one_canonical_form_is_refused_with_why(value: Any, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        canonical_json(value)


def test_canonical_json_writes_times_in_utc_text() -> None:
    east = timezone(timedelta(hours=2))
    assert canonical_json({"at": datetime(2024, 5, 1, 10, 0, tzinfo=east)}) == (
        '{"at":"2024-05-01T08:00:00.000000Z"}'
    )


@pytest.mark.parametrize("client", [None, 'atelier "nord"', "null"])
def test_an_entry_text_quotes_each_column_as_canonical_json_does(client: str | None) -> None:
    """The entry text equals the canonical JSON of the entry, whatever the texts hold."""
    at, actor, kind = "2024-05-01T08:30:00.000000Z", 'Ana "ops" Müller\n', "note"
    payload = {"text": "é"}
    expected = canonical_json(
        {"seq": 9, "kind": kind, "client": client, "at": at, "actor": actor, "payload": payload}
    )
    assert canonical_entry(9, kind, client, at, actor, canonical_json(payload), 1) == expected
