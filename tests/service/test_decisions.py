"""Decisions: the client's or the agency's arbitration, one ledger entry each, with an id
(``DEC-<seq>``) other flows refer to; bad input writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from support.service import (
    EntryList,
    kinds_in,
    ledger_entries,
    ledger_url,
    output,
    service_postgres,
    settings,
)

from webmg_ops.errors import BadInput, ExitCode
from webmg_ops.ledger import OPERATOR_VARIABLE, NewEntry
from webmg_ops.service.decisions import (
    DECISION_RECORDED,
    decisions_of,
    draft_decision,
    latest_decision_on,
)
from webmg_ops.service.ids import ItemId, format_id, parse_id

__all__ = ["ledger_url", "service_postgres", "settings"]


def test_a_decision_is_recorded_with_its_id_and_listed_per_client(
    cli: Callable[..., Any], ledger_url: str
) -> None:
    """`decision record` appends one entry; its id is DEC-<seq of that entry>; `decision
    list` shows it for its client only."""
    done = cli(
        "decision",
        "record",
        "alpenhof",
        "--title",
        "Booking widget first, newsletter later",
        "--by",
        "Anna Gruber (owner)",
        "--party",
        "client",
        "--note",
        "summer season starts in May",
        "--json",
    )
    assert done.code == ExitCode.OK, done
    (entry,) = ledger_entries(ledger_url)
    document = output(done.out)
    assert document["id"] == f"DEC-{entry.seq}"
    assert (entry.kind, entry.client) == (DECISION_RECORDED, "alpenhof")
    assert entry.payload == {
        "title": "Booking widget first, newsletter later",
        "by": "Anna Gruber (owner)",
        "party": "client",
        "note": "summer season starts in May",
    }
    other = cli(
        "decision",
        "record",
        "riverton",
        "--title",
        "Portal freeze extended",
        "--party",
        "agency",
        "--note",
        "audit week",
        "--json",
    )
    assert other.code == ExitCode.OK, other
    listed = cli("decision", "list", "alpenhof", "--json")
    assert [item["id"] for item in output(listed.out)] == [document["id"]]
    everything = cli("decision", "list", "--json")
    assert [item["client"] for item in output(everything.out)] == ["alpenhof", "riverton"]


def test_a_listed_decision_shows_everything_its_entry_records(
    cli: Callable[..., Any], ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`decision list --json` gives each field of the entry: who recorded it, when, who
    decided for which party, and no subject for a decision recorded on its own."""
    monkeypatch.setenv(OPERATOR_VARIABLE, "Maria Kofler")
    done = cli(
        "decision",
        "record",
        "alpenhof",
        "--title",
        "Keep PHP 8.2 until March",
        "--by",
        "Anna Gruber",
        "--party",
        "client",
        "--note",
        "the booking plugin is not ready",
    )
    assert done.code == ExitCode.OK, done
    (entry,) = ledger_entries(ledger_url)
    listed = cli("decision", "list", "alpenhof", "--json")
    assert output(listed.out) == [
        {
            "id": f"DEC-{entry.seq}",
            "client": "alpenhof",
            "at": entry.at.isoformat(),
            "recorded_by": "Maria Kofler",
            "title": "Keep PHP 8.2 until March",
            "by": "Anna Gruber",
            "party": "client",
            "note": "the booking plugin is not ready",
            "subject": None,
        }
    ]


def test_the_decision_on_an_item_is_the_last_one_before_the_entry_asking() -> None:
    """An item's history names the decision recorded with its entry: the last decision
    on that item before the entry's seq, never a later one, never one on another item."""
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    log = EntryList()

    def decide(title: str, subject: str | None) -> int:
        draft = draft_decision(
            "alpenhof", title=title, by="Anna", party="client", note="n", subject=subject
        )
        return log.add(draft, at).seq

    first = decide("first on CHG-4", "CHG-4")
    decide("on CHG-5", "CHG-5")
    decide("on nothing", None)
    # Another kind of entry naming the item is no decision on it.
    log.add(NewEntry("risk-accepted", "alpenhof", {"title": "t", "subject": "CHG-4"}), at)
    second = decide("second on CHG-4", "CHG-4")

    def title_before(seq: int) -> str | None:
        decision = latest_decision_on(log.entries, "CHG-4", seq)
        return decision.title if decision else None

    assert title_before(first) is None
    assert title_before(first + 1) == "first on CHG-4"
    assert title_before(second) == "first on CHG-4"
    assert title_before(second + 1) == "second on CHG-4"
    assert latest_decision_on(log.entries, "CHG-9", second + 1) is None
    found = latest_decision_on(log.entries, "CHG-4", second + 1)
    assert found is not None
    assert (found.id, found.seq, found.subject) == (f"DEC-{second}", second, "CHG-4")
    assert [decision.title for decision in decisions_of(log.entries)] == [
        "first on CHG-4",
        "on CHG-5",
        "on nothing",
        "second on CHG-4",
    ]


def test_by_defaults_to_the_recorded_operator(
    cli: Callable[..., Any], ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --by, the decider is the operator the ledger records as the actor."""
    monkeypatch.setenv(OPERATOR_VARIABLE, "Maria Kofler")
    done = cli("decision", "record", "riverton", "--title", "t", "--party", "agency", "--note", "n")
    assert done.code == ExitCode.OK, done
    (entry,) = ledger_entries(ledger_url)
    assert entry.payload["by"] == "Maria Kofler" == entry.actor


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", "--title", "t", "--party", "client", "--note", "n"), "unknown client"),
        (("alpenhof", "--title", "  ", "--party", "client", "--note", "n"), "--title is empty"),
        (("alpenhof", "--title", "t", "--party", "client", "--note", " "), "--note is empty"),
        (
            ("alpenhof", "--title", "t", "--party", "client", "--note", "n", "--by", " "),
            "--by is empty",
        ),
        (("alpenhof", "--title", "t", "--party", "owner", "--note", "n"), "'owner'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    cli: Callable[..., Any], ledger_url: str, args: tuple[str, ...], message: str
) -> None:
    """An unknown client, blank text or an unknown party: exit 2, the reason, no entry."""
    done = cli("decision", "record", *args)
    assert done.code == ExitCode.BAD_INPUT, done
    assert message in done.err
    assert "Traceback" not in done.err
    assert kinds_in(ledger_url) == []


def test_listing_an_unknown_client_exits_2(cli: Callable[..., Any]) -> None:
    """`decision list nobody` names the unknown client."""
    done = cli("decision", "list", "nobody")
    assert done.code == ExitCode.BAD_INPUT and "unknown client 'nobody'" in done.err


def test_a_flow_drafts_its_decision_naming_the_item() -> None:
    """Other flows record their decision with draft_decision, naming the item concerned."""
    draft = draft_decision(
        "alpenhof", title="accept", by=" Anna ", party="client", note="ok", subject="CHG-4"
    )
    assert (draft.kind, draft.client) == (DECISION_RECORDED, "alpenhof")
    assert draft.payload == {
        "title": "accept",
        "by": "Anna",
        "party": "client",
        "note": "ok",
        "subject": "CHG-4",
    }
    with pytest.raises(BadInput) as refused:
        draft_decision("alpenhof", title="t", by="b", party="vendor", note="n")
    assert refused.value.message == "--party 'vendor' must be one of client, agency"


@pytest.mark.parametrize(
    ("text", "prefix", "indexed", "expected"),
    [
        ("DEC-45", "DEC", False, ItemId("DEC", 45)),
        (" chg-7 ", "CHG", False, ItemId("CHG", 7)),
        ("RSK-44.2", "RSK", True, ItemId("RSK", 44, 2)),
        ("RSK-44", "RSK", True, ItemId("RSK", 44)),
    ],
)
def test_an_id_is_its_prefix_and_the_seq_of_its_creating_entry(
    text: str, prefix: str, indexed: bool, expected: ItemId
) -> None:
    """Ids read back as typed (case and spaces aside) and print as <PREFIX>-<seq>[.<n>]."""
    parsed = parse_id(text, prefix, indexed=indexed)
    assert parsed == expected
    assert str(parsed) == text.strip().upper()
    assert format_id(prefix, expected.seq, expected.index) == text.strip().upper()


@pytest.mark.parametrize(
    ("text", "prefix", "indexed", "message"),
    [
        ("DEC-0", "DEC", False, "'DEC-0' is not a decision id (expected DEC-42)"),
        ("DEC-", "DEC", False, "not a decision id"),
        ("CHG-4", "DEC", False, "'CHG-4' is not a decision id"),
        ("RSK-44.2", "RSK", False, "'RSK-44.2' is not a risk id (expected RSK-42)"),
        ("RSK-44.0", "RSK", True, "(expected RSK-42 or RSK-42.1)"),
        ("CHG-4x", "CHG", False, "'CHG-4x' is not a change id"),
    ],
)
def test_a_malformed_id_is_bad_input(text: str, prefix: str, indexed: bool, message: str) -> None:
    with pytest.raises(BadInput) as raised:
        parse_id(text, prefix, indexed=indexed)
    assert message in raised.value.message


def test_an_id_takes_no_place_unless_asked_to() -> None:
    """Without ``indexed`` an id is ``<PREFIX>-<seq>`` alone: a place after the seq is bad
    input, and the message gives only the plain form as the example."""
    with pytest.raises(BadInput) as raised:
        parse_id("CHG-43.1", "CHG")
    assert raised.value.message == "'CHG-43.1' is not a change id (expected CHG-42)"
    assert parse_id("CHG-43", "CHG") == ItemId("CHG", 43)
