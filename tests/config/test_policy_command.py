"""How ``policy CLIENT`` reads to a person: whole setting names on an 80-column terminal,
yearly freezes as days of the year, the meaning of a setting without a value, and a
prospect's values shown as the baseline they are, not as a contracted level's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.consoles import widen_consoles

from webmg_ops.errors import ExitCode

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]

CLIENTS = ("agency", "alpenhof", "atelier-nord", "riverton", "terre-solidaire")


def _row(setting: str) -> re.Pattern[str]:
    """Return a pattern for the table row of SETTING: its name whole in the first cell,
    then the value cell's first line (group ``value``)."""
    return re.compile(rf"^│ {re.escape(setting)} +│ (?P<value>[^│]*?) +│", re.MULTILINE)


@pytest.mark.parametrize("client", CLIENTS)
def test_at_80_columns_every_setting_name_is_shown_whole(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    settings = json.loads(cli("policy", client, "--json").out)["settings"]
    widen_consoles(monkeypatch, 80)
    shown = cli("policy", client)
    assert shown.code == ExitCode.OK, shown
    assert max(len(line) for line in shown.err.splitlines()) <= 80
    missing = [name for name in settings if not _row(name).search(shown.err)]
    assert missing == []
    # Nothing is cut with an ellipsis either: long values and sources fold over lines.
    assert "…" not in shown.err


def test_a_yearly_freeze_reads_as_days_of_every_year(cli: Cli, edit_contract: EditContract) -> None:
    def one_off(data: dict[str, Any]) -> None:
        data.setdefault("freezes", []).append(
            {"name": "migration", "start": "2026-05-04", "end": "2026-05-08", "reason": "move"}
        )

    edit_contract("alpenhof", one_off)
    shown = cli("policy", "alpenhof")
    assert shown.code == ExitCode.OK, shown
    # The hotel sector's summer season, 1 July to 31 August of every year.
    assert "every year, 1 Jul → 31 Aug" in shown.err
    # The year a yearly freeze is written with means nothing and is not shown.
    assert "2000-07-01" not in shown.err
    assert "2026-05-04 → 2026-05-08" in shown.err
    freezes = json.loads(cli("policy", "alpenhof", "--json").out)["freezes"]
    assert {item["name"]: item["when"] for item in freezes}["summer season"] == (
        "every year, 1 Jul → 31 Aug"
    )


def test_a_level_without_response_times_answers_the_next_business_day(cli: Cli) -> None:
    # alpenhof is stability-security: P1 to P3 are answered the next business day; its
    # level has no drift check, no availability monitoring and no availability target.
    shown = cli("policy", "alpenhof")
    assert shown.code == ExitCode.OK, shown
    expected = {
        "response.p1": "next business day",
        "response.p2": "next business day",
        "response.p3": "next business day",
        "cadence.drift": "not part of the level",
        "targets.availability": "no target",
    }
    for setting, value in expected.items():
        row = _row(setting).search(shown.err)
        assert row is not None and row["value"] == value, setting


@pytest.mark.parametrize("client", CLIENTS)
def test_no_setting_shows_a_bare_dash(cli: Cli, client: str) -> None:
    shown = cli("policy", client)
    assert shown.code == ExitCode.OK, shown
    dashes = re.findall(r"^│ (\S+) +│ - +│", shown.err, re.MULTILINE)
    assert dashes == []


def test_a_prospects_values_come_from_the_baseline_not_a_contracted_level(
    cli: Cli, edit_contract: EditContract
) -> None:
    def prospect(data: dict[str, Any]) -> None:
        for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
            data.pop(key, None)

    edit_contract("alpenhof", prospect)
    document = json.loads(cli("policy", "alpenhof", "--json").out)
    sources = {row["source"] for row in document["settings"].values()}
    # Baseline values, the hotel sector's additions, and what the contract still sets.
    assert sources <= {"prospect baseline (stability-security)", "sector hotel", "contract"}
    assert "prospect baseline (stability-security)" in sources
    shown = cli("policy", "alpenhof")
    assert "level stability-security" not in shown.err
    assert "prospect baseline (stability-security)" in shown.err
