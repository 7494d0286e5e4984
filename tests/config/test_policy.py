"""Policy: level defaults, sector presets, contract overrides and their sources."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import Level, Retention, Sector
from webmg_ops.config.policy import LEVEL_DEFAULTS, SECTOR_PRESETS, is_looser, stricter
from webmg_ops.errors import ExitCode


def test_level_table_matches_the_design() -> None:
    stability = LEVEL_DEFAULTS[Level.STABILITY_SECURITY]
    institutional = LEVEL_DEFAULTS[Level.INSTITUTIONAL_SLA]
    assert stability["updates.mode"] == "security"
    assert LEVEL_DEFAULTS[Level.CONTINUOUS_EVOLUTION]["updates.mode"] == "all"
    assert institutional["updates.mode"] == "approved"
    assert institutional["cadence.backup"] == timedelta(hours=6)
    assert institutional["cadence.drill"] == timedelta(days=7)
    assert institutional["backup.retention"] == Retention(
        hourly=8, daily=14, weekly=8, monthly=12, yearly=2
    )
    assert institutional["targets.rpo"] == timedelta(hours=6)
    assert institutional["targets.rto"] == timedelta(hours=4)
    assert stability["response.p1"] is None  # next business day
    assert stability["cadence.drill"] == timedelta(days=91)


def test_every_level_has_every_setting() -> None:
    settings = {frozenset(values) for values in LEVEL_DEFAULTS.values()}
    assert len(settings) == 1
    (names,) = settings
    for preset in SECTOR_PRESETS.values():
        assert set(preset.settings) <= names


def test_sources_level_sector_contract(inventories: Path) -> None:
    policy = load_client(inventories, "riverton").policy
    assert policy.values["cadence.drill"].source == "level institutional-sla"
    assert policy.values["response.p1"].value == timedelta(minutes=20)
    assert policy.values["response.p1"].source == "contract"
    # institutional-sla already requires approval; the government preset keeps it.
    assert policy.approval_required


def test_sector_tightens_a_looser_level(inventories: Path, edit_contract) -> None:
    edit_contract("riverton", lambda data: data.update(level="stability-security"))
    policy = load_client(inventories, "riverton").policy
    assert policy.values["updates.approval_required"].value is True
    assert policy.values["updates.approval_required"].source == "sector government"
    assert policy.values["reporting.audit_export"].source == "sector government"
    assert policy.cadence("drift") == timedelta(days=1)


def test_hotel_preset_adds_summer_freeze_and_page_weight(inventories: Path) -> None:
    policy = load_client(inventories, "alpenhof").policy
    names = {(item.freeze.name, item.source) for item in policy.freezes}
    assert ("summer season", "sector hotel") in names
    assert ("christmas and new year", "contract") in names
    assert policy.get("checks.mobile_page_weight") is True


def test_presets_for_education_ngo_sme() -> None:
    assert {f.name for f in SECTOR_PRESETS[Sector.EDUCATION].freezes} == {
        "winter exams",
        "summer exams",
    }
    assert SECTOR_PRESETS[Sector.NGO].settings["checks.donor_export"] is True
    assert SECTOR_PRESETS[Sector.SME].settings["cadence.report"] == timedelta(days=30)


def test_tighter_override_is_accepted(inventories: Path, edit_contract) -> None:
    edit_contract("alpenhof", lambda data: data.update(cadences={"drill": "30d"}))
    policy = load_client(inventories, "alpenhof").policy
    assert policy.cadence("drill") == timedelta(days=30)
    assert policy.values["cadence.drill"].source == "contract"


def test_strictness_rules() -> None:
    assert is_looser("cadence.drill", timedelta(days=30), timedelta(days=7))
    assert not is_looser("cadence.drill", timedelta(days=1), timedelta(days=7))
    assert is_looser("response.p1", None, timedelta(hours=1))
    assert not is_looser("response.p1", timedelta(hours=4), None)
    assert is_looser("updates.mode", "all", "security")
    assert not is_looser("updates.mode", "approved", "security")
    assert is_looser("updates.approval_required", False, True)
    assert stricter("targets.rto", timedelta(hours=8), timedelta(hours=4)) == timedelta(hours=4)


def test_policy_command_json(cli) -> None:
    result = cli("policy", "terre-solidaire", "--json")
    assert result.code == ExitCode.OK, result
    document = json.loads(result.out)
    assert document["level"] == "continuous-evolution"
    assert document["settings"]["cadence.backup"] == {
        "value": "12h",
        "source": "contract",
        "description": "verified backup every",
    }
    assert document["settings"]["checks.donor_export"]["source"] == "sector ngo"


def test_policy_command_table(cli) -> None:
    result = cli("policy", "alpenhof")
    assert result.code == ExitCode.OK
    assert "summer season" in result.err
    assert "level stability-security" in result.err


#: The stability-security level as the service's level table states it (DESIGN):
#: backups keep 7 daily and 4 weekly snapshots; RPO and RTO are 24 hours.
STABILITY_RETENTION = {"daily": 7, "weekly": 4}


def test_a_retention_looser_in_one_period_only_is_refused(cli, edit_contract) -> None:
    # More daily snapshots than the level, but no weekly ones: looser, whatever the daily count.
    edit_contract("alpenhof", lambda data: data["backup"].update(retention={"daily": 20}))
    result = cli("validate", "alpenhof")
    assert result.code == ExitCode.BAD_INPUT, result
    assert "looser" in result.err and "retention" in result.err, result


def test_a_retention_at_least_the_levels_in_every_period_is_accepted(
    inventories: Path, edit_contract
) -> None:
    kept = {**STABILITY_RETENTION, "daily": STABILITY_RETENTION["daily"] + 1, "monthly": 3}
    edit_contract("alpenhof", lambda data: data["backup"].update(retention=kept))
    policy = load_client(inventories, "alpenhof").policy
    assert policy.values["backup.retention"].value == Retention(**kept)
    assert policy.values["backup.retention"].source == "contract"


def test_a_contract_repeating_its_levels_values_is_not_looser(
    inventories: Path, edit_contract
) -> None:
    # Equal is not looser: a contract may write down what its level already gives.
    def repeat_the_level(data: dict) -> None:
        data["backup"]["retention"] = dict(STABILITY_RETENTION)
        data["targets"] = {"rpo": "24h", "rto": "24h"}

    edit_contract("alpenhof", repeat_the_level)
    policy = load_client(inventories, "alpenhof").policy
    assert policy.get("targets.rpo") == timedelta(hours=24)
    assert policy.get("targets.rto") == timedelta(hours=24)
    assert policy.get("backup.retention") == Retention(**STABILITY_RETENTION)
