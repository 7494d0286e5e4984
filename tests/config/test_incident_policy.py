"""The incident rows of the policy: severity table, SLA clock targets, 24/7 clocks and
post-mortems per level, shown by ``policy``, tightened by a contract, never loosened;
and the contract's business hours, validated at the edge.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]

# Written out by hand, not read from the module: the table the product promises.
EXPECTED_SEVERITY = {
    # client (level): {(impact, criticality): priority} for the cells that differ by level
    "alpenhof": {("security", "major"): "P2", ("data", "major"): "P2"},  # stability-security
    "riverton": {("security", "major"): "P1", ("data", "major"): "P1"},  # institutional-sla
}


@pytest.mark.parametrize("client", ["alpenhof", "atelier-nord", "riverton", "terre-solidaire"])
def test_every_severity_clock_and_postmortem_row_is_shown_by_policy(cli: Cli, client: str) -> None:
    """``policy --json`` lists the 12 severity cells, the three clocks of each priority,
    the 24/7 flag and the post-mortem rows, each with a source and a meaning."""
    done = cli("policy", client, "--json")
    assert done.code == ExitCode.OK, done
    settings = json.loads(done.out)["settings"]
    names = [
        *(
            f"severity.{impact}.{criticality}"
            for impact in ("availability", "security", "data", "operations")
            for criticality in ("critical", "major", "minor")
        ),
        *(f"{clock}.p{n}" for clock in ("response", "restore", "resolution") for n in (1, 2, 3)),
        "clocks.around_the_clock",
        "postmortem.p1",
        "postmortem.p2",
        "postmortem.p3",
    ]
    for name in names:
        assert name in settings, name
        assert settings[name]["source"] and settings[name]["description"], name
    # Any critical incident is a P1, any minor one a P3, on every level.
    for impact in ("availability", "security", "data", "operations"):
        assert settings[f"severity.{impact}.critical"]["value"] == "P1"
        assert settings[f"severity.{impact}.minor"]["value"] == "P3"
    assert settings["postmortem.p1"]["value"] is True


def test_the_table_differs_by_level_as_the_product_promises(cli: Cli) -> None:
    """Security and data majors are P1 on institutional-sla only; its clocks run 24/7."""
    for client, cells in EXPECTED_SEVERITY.items():
        settings = json.loads(cli("policy", client, "--json").out)["settings"]
        for (impact, criticality), priority in cells.items():
            assert settings[f"severity.{impact}.{criticality}"]["value"] == priority, client
        assert settings["severity.availability.major"]["value"] == "P2"
    riverton = json.loads(cli("policy", "riverton", "--json").out)["settings"]
    alpenhof = json.loads(cli("policy", "alpenhof", "--json").out)["settings"]
    assert riverton["clocks.around_the_clock"]["value"] is True
    assert alpenhof["clocks.around_the_clock"]["value"] is False
    # The institutional P1 restore target is its recovery time objective.
    assert riverton["restore.p1"]["value"] == riverton["targets.rto"]["value"] == "4h"
    assert riverton["postmortem.p2"]["value"] is True
    assert alpenhof["postmortem.p2"]["value"] is False


def test_the_human_policy_table_shows_the_incident_rows(cli: Cli) -> None:
    done = cli("policy", "riverton")
    assert done.code == ExitCode.OK, done
    for text in ("severity.security.major", "restore.p1", "resolution.p3", "postmortem.p2"):
        assert text in done.err


def test_a_contract_may_raise_a_severity_shorten_a_clock_and_ask_for_more(
    inventories: Path, edit_contract: EditContract
) -> None:
    """Tightening: a higher priority, shorter budgets, 24/7 clocks, more post-mortems."""
    edit_contract(
        "alpenhof",
        lambda data: data.update(
            incidents={
                "severity": {"availability": {"major": "P1"}, "operations": {"minor": "P2"}},
                "restore_times": {"p1": "1d"},
                "resolution_times": {"p2": "5d"},
                "around_the_clock": True,
                "postmortem": {"p2": True},
            }
        ),
    )
    policy = load_client(inventories, "alpenhof").policy
    assert policy.values["severity.availability.major"].value == "P1"
    assert policy.values["severity.availability.major"].source == "contract"
    assert policy.get("severity.operations.minor") == "P2"
    assert policy.get("severity.security.major") == "P2"  # untouched: the level's
    assert policy.get("restore.p1") == timedelta(days=1)
    assert policy.get("resolution.p2") == timedelta(days=5)
    assert policy.get("clocks.around_the_clock") is True
    assert policy.get("postmortem.p2") is True


@pytest.mark.parametrize(
    ("incidents", "message"),
    [
        (
            {"severity": {"security": {"major": "P2"}}},
            "incidents.severity.security.major: P2 is looser than the level "
            "institutional-sla default of P1",
        ),
        (
            {"severity": {"availability": {"critical": "P3"}}},
            "incidents.severity.availability.critical: P3 is looser",
        ),
        ({"restore_times": {"p1": "8h"}}, "incidents.restore_times.p1: 8h is looser"),
        ({"resolution_times": {"p3": "30d"}}, "incidents.resolution_times.p3: 30d is looser"),
        ({"around_the_clock": False}, "incidents.around_the_clock: no is looser"),
        ({"postmortem": {"p1": False}}, "incidents.postmortem.p1: no is looser"),
    ],
)
def test_a_contract_loosening_an_incident_row_is_refused(
    cli: Cli, edit_contract: EditContract, incidents: dict[str, Any], message: str
) -> None:
    edit_contract("riverton", lambda data: data.update(incidents=incidents))
    done = cli("validate", "riverton")
    assert done.code == ExitCode.BAD_INPUT, done
    assert message in done.err, done
    assert "a contract may only tighten its level" in done.err


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"country": "ZZ"}, "no public holidays are known for country 'ZZ'"),
        ({"region": "7"}, "a region needs its country"),
        ({"country": "AT", "region": "Tyrol"}, "AT has no region 'Tyrol'"),
        ({"start": "18:00", "end": "09:00"}, "business hours must end after they start"),
        ({"weekdays": []}, "weekdays"),
        ({"timezone": "Mars/Olympus"}, "unknown IANA time zone 'Mars/Olympus'"),
        ({"closures": ["2026-13-01"]}, "closures"),
    ],
)
def test_bad_business_hours_are_refused_at_the_edge(
    cli: Cli, edit_contract: EditContract, hours: dict[str, Any], message: str
) -> None:
    edit_contract("alpenhof", lambda data: data.update(business_hours=hours))
    done = cli("validate", "alpenhof")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "business_hours" in done.err and message in done.err, done


def test_business_hours_default_to_the_working_week_in_the_windows_zone(
    inventories: Path, edit_contract: EditContract
) -> None:
    # atelier-nord's contract says nothing of business hours.
    contract = load_client(inventories, "atelier-nord").contract
    hours = contract.business_hours
    assert [day.value for day in hours.weekdays] == ["mon", "tue", "wed", "thu", "fri"]
    assert (hours.start.isoformat(), hours.end.isoformat()) == ("09:00:00", "18:00:00")
    assert hours.country is None and hours.closures == []
    # Its windows are in Berlin: so is its business, unless the contract says.
    assert contract.time_zone == "Europe/Berlin"
    edit_contract(
        "atelier-nord",
        lambda data: data.update(business_hours={"timezone": "Europe/Zurich", "country": "CH"}),
    )
    assert load_client(inventories, "atelier-nord").contract.time_zone == "Europe/Zurich"


def test_the_demo_hotel_declares_its_office_hours_and_holidays(inventories: Path) -> None:
    hours = load_client(inventories, "alpenhof").contract.business_hours
    assert (hours.timezone, hours.country, hours.region) == ("Europe/Vienna", "AT", "7")
