"""The availability target of each level (``targets.availability``), and a contract's.

The service's level table: no availability target on stability-security (availability
is not monitored there), 99.5 % on continuous-evolution, 99.9 % on institutional-sla.
A contract may raise its level's target or repeat it, never lower it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import Level
from webmg_ops.config.policy import DESCRIPTIONS, LEVEL_DEFAULTS, is_looser
from webmg_ops.errors import ExitCode

TARGETS = {
    Level.STABILITY_SECURITY: None,
    Level.CONTINUOUS_EVOLUTION: 99.5,
    Level.INSTITUTIONAL_SLA: 99.9,
}


def test_each_levels_availability_target_is_as_tabled_and_described() -> None:
    assert {level: values["targets.availability"] for level, values in LEVEL_DEFAULTS.items()} == (
        TARGETS
    )
    description = DESCRIPTIONS["targets.availability"]
    assert "99.5" in description and "99.9" in description
    assert "none on stability-security" in description


def test_a_lower_target_is_looser_and_any_target_tightens_none() -> None:
    assert is_looser("targets.availability", 99.0, 99.5)
    assert not is_looser("targets.availability", 99.5, 99.5)
    assert not is_looser("targets.availability", 99.95, 99.9)
    assert not is_looser("targets.availability", 95.0, None)
    assert is_looser("targets.availability", None, 99.9)


def test_a_contract_lowering_its_levels_target_is_refused(
    cli: Callable[..., Any], edit_contract: Callable[..., Path]
) -> None:
    edit_contract("riverton", lambda data: data.update(targets={"availability": 99.8}))
    result = cli("validate", "riverton")
    assert result.code == ExitCode.BAD_INPUT, result
    assert (
        "targets.availability: 99.8 is looser than the level institutional-sla default of 99.9"
        in result.err
    )


def test_a_contract_repeating_or_raising_its_levels_target_is_accepted(
    inventories: Path, edit_contract: Callable[..., Path]
) -> None:
    edit_contract("terre-solidaire", lambda data: data.update(targets={"availability": 99.5}))
    policy = load_client(inventories, "terre-solidaire").policy
    assert policy.values["targets.availability"].value == 99.5
    edit_contract("terre-solidaire", lambda data: data.update(targets={"availability": 99.95}))
    policy = load_client(inventories, "terre-solidaire").policy
    assert policy.values["targets.availability"].value == 99.95
    assert policy.values["targets.availability"].source == "contract"


def test_a_target_on_a_level_without_one_is_accepted(
    inventories: Path, edit_contract: Callable[..., Path]
) -> None:
    edit_contract("alpenhof", lambda data: data.update(targets={"availability": 99.0}))
    policy = load_client(inventories, "alpenhof").policy
    assert policy.get("targets.availability") == 99.0
    assert load_client(inventories, "atelier-nord").policy.get("targets.availability") is None


def test_a_target_above_100_percent_is_bad_input(
    cli: Callable[..., Any], edit_contract: Callable[..., Path]
) -> None:
    edit_contract("riverton", lambda data: data.update(targets={"availability": 100.5}))
    result = cli("validate", "riverton")
    assert result.code == ExitCode.BAD_INPUT, result
    assert "targets.availability" in result.err
