"""``reporting.link_days``: how long a published report's links stay valid.

S3 signs a presigned link for 7 days at most (SigV4), so 7 is every level's default and
the longest a contract may write; a shorter life is tighter, a longer one looser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import Level
from webmg_ops.config.policy import DESCRIPTIONS, LEVEL_DEFAULTS, is_looser
from webmg_ops.errors import ExitCode

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]


def link_days(days: object) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.update(reporting={"link_days": days})


@pytest.mark.parametrize("level", list(Level))
def test_every_level_lets_links_live_seven_days(level: Level) -> None:
    assert LEVEL_DEFAULTS[level]["reporting.link_days"] == 7
    assert "link" in DESCRIPTIONS["reporting.link_days"]


@pytest.mark.parametrize(
    ("candidate", "baseline", "looser"),
    [(7, 3, True), (4, 3, True), (3, 3, False), (1, 3, False), (None, 3, True)],
)
def test_a_longer_link_life_is_looser(candidate: int | None, baseline: int, looser: bool) -> None:
    assert is_looser("reporting.link_days", candidate, baseline) is looser


def test_a_contract_may_shorten_the_links_life(
    inventories: Path, edit_contract: EditContract
) -> None:
    edit_contract("alpenhof", link_days(2))
    policy = load_client(inventories, "alpenhof").policy
    assert policy.get("reporting.link_days") == 2
    assert policy.values["reporting.link_days"].source == "contract"


@pytest.mark.parametrize("days", [0, 8, 30])
def test_a_life_outside_one_to_seven_days_is_refused_with_the_reason(
    cli: Cli, edit_contract: EditContract, days: int
) -> None:
    edit_contract("alpenhof", link_days(days))
    result = cli("validate", "alpenhof")
    assert result.code == ExitCode.BAD_INPUT, result
    assert "link_days must be 1 to 7 days" in result.err, result


def test_a_life_longer_than_the_levels_is_refused_as_looser(
    cli: Cli, edit_contract: EditContract, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A level whose links live 2 days: a contract asking for 5 would loosen it.
    monkeypatch.setitem(LEVEL_DEFAULTS[Level.STABILITY_SECURITY], "reporting.link_days", 2)
    edit_contract("alpenhof", link_days(5))
    result = cli("validate", "alpenhof")
    assert result.code == ExitCode.BAD_INPUT, result
    assert "looser" in result.err and "link" in result.err, result
