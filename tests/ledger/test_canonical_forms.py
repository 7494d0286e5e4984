"""The canonical forms in detail: RFC 8785 text of awkward values, and each refusal's message.

Expected texts are written by hand from RFC 8785's rules (numbers as the
shortest double, no ``.0``; object keys sorted by their UTF-16 code units);
expected messages from the rule each states.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, NamedTuple

import pytest

from webmg_ops.errors import BadInput
from webmg_ops.ledger import (
    canonical_entry,
    canonical_json,
    format_utc,
    jcs_json,
    parse_utc,
)

PLUS_ONE = timezone(timedelta(hours=1))

# A key beyond the Basic Multilingual Plane is two UTF-16 code units starting 0xD800..0xDBFF:
# RFC 8785 sorts it before any key starting 0xE000..0xFFFF, though its code point is higher.
PRIVATE = "\ue000"  # U+E000, one code unit 0xE000
FIRST_ASTRAL = "\U00010000"  # U+10000, code units 0xD800 0xDC00
FACE = "\U0001f600"  # U+1F600, code units 0xD83D 0xDE00
LAST_BMP = "\uffff"  # U+FFFF, one code unit 0xFFFF


class Point(NamedTuple):
    """A tuple subclass, as a payload may hold."""

    x: float
    y: int


class Readings(list[Any]):
    """A list subclass."""


class Key(StrEnum):
    """String-enum keys, as a payload built from constants may hold."""

    FACE = FACE
    PRIVATE = PRIVATE


def message(error: pytest.ExceptionInfo[BaseException]) -> str:
    """Given a caught error, return its message."""
    return str(error.value)


# --- times ---------------------------------------------------------------------------------


def test_a_naive_datetime_is_refused_naming_it() -> None:
    with pytest.raises(BadInput) as error:
        format_utc(datetime(2024, 5, 1, 8, 30))
    assert message(error) == "naive datetime 2024-05-01T08:30:00 has no time zone"


def test_a_datetime_with_no_utc_form_is_refused_naming_it() -> None:
    with pytest.raises(BadInput) as error:
        format_utc(datetime(1, 1, 1, tzinfo=PLUS_ONE))  # 31 December of year 0 in UTC
    assert message(error) == "datetime 0001-01-01T00:00:00+01:00 is out of range in UTC"


def test_parse_utc_ignores_surrounding_blanks() -> None:
    assert parse_utc("  2024-05-01T10:30:00+02:00\n") == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def test_parse_utc_names_what_it_expects() -> None:
    with pytest.raises(BadInput) as error:
        parse_utc("yesterday")
    assert message(error) == (
        "'yesterday' is not an ISO-8601 time (e.g. 2024-05-01 or 2024-05-01T08:30:00Z)"
    )


# --- canonical JSON (format 1) refusals ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {"outer": {1: "a"}},
        {"hosts": ("web1", {1: "a"})},
        [[{1: "a"}]],
    ],
)
def test_a_number_key_anywhere_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(BadInput) as error:
        canonical_json(value)
    assert message(error) == "JSON object key 1 is not a string"


def test_a_value_json_has_no_form_for_is_named() -> None:
    with pytest.raises(BadInput) as error:
        canonical_json({"x": {1}})
    assert message(error) == "not canonical JSON: a set is not a JSON value"


# --- RFC 8785 text (format 2) ------------------------------------------------------------------


def test_keys_are_sorted_by_utf16_code_units() -> None:
    assert jcs_json({PRIVATE: 1, FIRST_ASTRAL: 2, "a": 3}) == (
        '{"a":3,"' + FIRST_ASTRAL + '":2,"' + PRIVATE + '":1}'
    )


def test_a_key_at_the_end_of_the_bmp_sorts_as_one_code_unit() -> None:
    assert jcs_json({LAST_BMP: 1, FACE: 2.0}) == '{"' + FACE + '":2,"' + LAST_BMP + '":1}'


def test_string_enum_keys_are_sorted_as_their_text() -> None:
    assert jcs_json({Key.PRIVATE: 1, Key.FACE: 2}) == '{"' + FACE + '":2,"' + PRIVATE + '":1}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"d": 2.0}, '{"d":2}'),
        ({"d": [0.5, 3.0]}, '{"d":[0.5,3]}'),
        ({"big": 1e21, "small": 1e-7}, '{"big":1e+21,"small":1e-7}'),
        (
            {"n": 9007199254740991, "m": -9007199254740991},
            '{"m":-9007199254740991,"n":9007199254740991}',
        ),
    ],
)
def test_numbers_are_written_as_rfc_8785_writes_them(value: Any, expected: str) -> None:
    assert jcs_json(value) == expected


def test_subclasses_of_objects_and_arrays_are_written_as_their_base() -> None:
    value = {
        "point": Point(1.0, 2),
        "readings": Readings([4.0, 0.25]),
        "ordered": OrderedDict([("z", 1.0), ("a", 0.5)]),
    }
    assert jcs_json(value) == ('{"ordered":{"a":0.5,"z":1},"point":[1,2],"readings":[4,0.25]}')


def test_a_whole_number_only_inside_an_object_subclass_is_still_written_exactly() -> None:
    # The subclass alone holds the value the fast writer would get wrong ("1.0").
    assert jcs_json({"ordered": OrderedDict([("z", 1.0)])}) == '{"ordered":{"z":1}}'


def test_subclasses_with_plain_values_are_written_as_their_base() -> None:
    value = {"point": Point(0.5, 2), "ordered": OrderedDict([("z", "b"), ("a", None)])}
    assert jcs_json(value) == '{"ordered":{"a":null,"z":"b"},"point":[0.5,2]}'


def test_datetimes_next_to_whole_numbers_are_utc_text() -> None:
    value = {"at": datetime(2025, 3, 1, 9, 0, tzinfo=PLUS_ONE), "duration_s": 2.0}
    assert jcs_json(value) == '{"at":"2025-03-01T08:00:00.000000Z","duration_s":2}'


def test_a_naive_datetime_is_refused_in_either_writer() -> None:
    for value in ({"at": datetime(2025, 3, 1)}, {"at": datetime(2025, 3, 1), "d": 1.0}):
        with pytest.raises(BadInput) as error:
            jcs_json(value)
        assert message(error) == "naive datetime 2025-03-01T00:00:00 has no time zone"


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**20])
def test_an_integer_beyond_the_exact_doubles_is_refused_naming_it(value: int) -> None:
    with pytest.raises(BadInput) as error:
        jcs_json({"n": [value]})
    assert message(error) == (
        f"integer {value} is beyond ±(2^53-1), which RFC 8785 canonical JSON "
        "cannot write exactly: record it as text"
    )


def test_a_number_key_is_refused_naming_it() -> None:
    with pytest.raises(BadInput) as error:
        jcs_json({"outer": {2: "b"}})
    assert message(error) == "JSON object key 2 is not a string"


@pytest.mark.parametrize("bad", [{1, 2}, float("nan"), float("inf"), "\ud800"])
@pytest.mark.parametrize(
    "neighbour",
    [
        {},
        {"whole": 1.0},
        {"n": 7},
        {"é": "x"},
        {FACE: "x"},
        {"list": [1]},
        {"list": [1.0]},
    ],
)
def test_a_bad_value_gets_one_message_whatever_else_the_payload_holds(
    bad: Any, neighbour: dict[str, Any]
) -> None:
    with pytest.raises(BadInput) as alone:
        jcs_json({"x": bad})
    with pytest.raises(BadInput) as with_neighbour:
        jcs_json({"x": bad, **neighbour})
    with pytest.raises(BadInput) as in_a_list:
        jcs_json({"x": [bad], **neighbour})
    assert message(alone).startswith("not canonical JSON: ")
    assert message(with_neighbour) == message(in_a_list) == message(alone)


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb"])
def test_a_lone_surrogate_is_refused_even_alone(bad: str) -> None:
    with pytest.raises(BadInput):
        jcs_json({"x": bad})
    with pytest.raises(BadInput):
        jcs_json([bad])


# --- the entry composition -----------------------------------------------------------------------


@pytest.mark.parametrize("entry_format", [0, 3])
def test_an_unknown_entry_format_is_named(entry_format: int) -> None:
    with pytest.raises(ValueError) as error:
        canonical_entry(1, "note", None, "2025-03-01T08:00:00.000000Z", "ana", "{}", entry_format)
    assert message(error) == f"unknown entry format {entry_format}"
