"""One rule for every time option: ISO 8601 with its offset; without one, exit 2 naming
the accepted forms, nothing written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from webmg_ops.config.instants import parse_instant
from webmg_ops.errors import BadInput, ExitCode

FORMS = "write it with its offset, e.g. 2026-07-01T09:00+02:00, or Z for UTC: 2026-07-01T07:00Z"

#: Every command taking a time, with the option, and what else it needs on its line.
TIME_OPTIONS = [
    ("due", "--at", ()),
    ("drills-due", "--at", ()),
    ("tick", "--at", ()),
    ("incident list", "--at", ()),
    ("incident show INC-1", "--at", ()),
    ("ledger export", "--since", ("--format", "csv")),
]


def test_an_offset_or_z_is_read_as_that_instant_in_utc() -> None:
    expected = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert parse_instant("--at", "2026-07-01T09:00+02:00") == expected
    assert parse_instant("--at", " 2026-07-01T07:00Z ") == expected
    assert parse_instant("--at", "2026-07-01T03:00-04:00").tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-07-01T09:00", "2026-07-01", "2026-07-01 09:00:00"])
def test_a_time_without_offset_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_instant("--since", text)
    assert refused.value.message == f"--since {text!r} needs a UTC offset; {FORMS}"


def test_what_is_no_time_is_refused_naming_the_forms() -> None:
    with pytest.raises(BadInput) as refused:
        parse_instant("--at", "tomorrow")
    assert refused.value.message == f"--at 'tomorrow' is not an ISO 8601 time; {FORMS}"


@pytest.mark.parametrize(("command", "option", "extra"), TIME_OPTIONS, ids=lambda v: str(v))
def test_every_time_option_follows_the_rule(
    cli: Any, command: str, option: str, extra: tuple[str, ...]
) -> None:
    done = cli(*command.split(), *extra, option, "2026-11-30T09:00")
    assert done.code == ExitCode.BAD_INPUT, done
    assert f"Error: {option} '2026-11-30T09:00' needs a UTC offset; {FORMS}" in " ".join(
        done.err.split()
    )
