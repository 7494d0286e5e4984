"""The strictness rules of the effective policy, case by case, and how a policy reads.

Each expectation is the service's rule written out (a required approval may not
be dropped, a permission may not be granted, a shorter duration is stricter),
not read back from the code.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from webmg_ops.config.clients import ContractInvalid, load_client
from webmg_ops.config.contract import Level, Retention
from webmg_ops.config.policy import describe_value, is_looser, policy_document, stricter

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("setting", "candidate", "baseline", "looser"),
    [
        # A requirement (a flag) may be added, never dropped.
        ("updates.approval_required", False, True, True),
        ("updates.approval_required", True, True, False),
        ("updates.approval_required", True, False, False),
        ("updates.approval_required", False, False, False),
        # A permission (partial runs) may be withdrawn, never granted.
        ("runs.partial_hosts", True, False, True),
        ("runs.partial_hosts", False, True, False),
        ("runs.partial_hosts", True, True, False),
        ("runs.partial_hosts", False, False, False),
        # A duration may shrink, never grow; None (not part of the level) is the loosest.
        ("targets.rto", 8 * HOUR, 4 * HOUR, True),
        ("targets.rto", 4 * HOUR, 4 * HOUR, False),
        ("targets.rto", 2 * HOUR, 4 * HOUR, False),
        ("response.p1", None, HOUR, True),
        ("response.p1", HOUR, None, False),
        # Escalation thresholds may be added, never dropped; the same ones are not looser.
        ("escalation.thresholds", (50, 100), (50, 100), False),
        ("escalation.thresholds", (50, 75, 100), (50, 100), False),
        ("escalation.thresholds", (100,), (50, 100), True),
        # A severity's priority may become more urgent, never less; the same is not looser.
        ("severity.availability.critical", "P1", "P1", False),
        ("severity.availability.critical", "P1", "P2", False),
        ("severity.availability.critical", "P3", "P2", True),
        # Probe samples may be kept longer, never shorter; the same time is not looser.
        ("monitoring.samples_kept", timedelta(days=30), timedelta(days=35), True),
        ("monitoring.samples_kept", timedelta(days=35), timedelta(days=35), False),
        ("monitoring.samples_kept", timedelta(days=95), timedelta(days=35), False),
        # The budget marker is the agency's price, never a loosening.
        ("budget.marker", "from $1 / month", "from $1,500 / month", False),
        ("budget.marker", "from $9,999 / month", "from $150 / month", False),
    ],
)
def test_what_loosens_a_setting(
    setting: str, candidate: object, baseline: object, looser: bool
) -> None:
    assert is_looser(setting, candidate, baseline) is looser


@pytest.mark.parametrize(
    ("setting", "one", "other", "strictest"),
    [
        ("targets.rto", 4 * HOUR, 8 * HOUR, 4 * HOUR),
        ("targets.rto", 8 * HOUR, 4 * HOUR, 4 * HOUR),
        ("updates.approval_required", False, True, True),
        ("updates.approval_required", True, False, True),
        ("runs.partial_hosts", True, False, False),
        ("runs.partial_hosts", False, True, False),
    ],
)
def test_the_stricter_of_two_values_whichever_comes_first(
    setting: str, one: object, other: object, strictest: object
) -> None:
    assert stricter(setting, one, other) == strictest


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (True, "yes"),
        (False, "no"),
        (timedelta(days=7), "7d"),
        (Retention(daily=7, weekly=4), "7 daily, 4 weekly"),
        (Retention(), "none"),
        ("security", "security"),
    ],
)
def test_how_a_value_reads(value: object, text: str) -> None:
    assert describe_value(value) == text


@pytest.mark.parametrize(
    ("setting", "text"),
    [
        ("response.p1", "next business day"),
        ("monitoring.interval", "not monitored"),
        # A setting with no meaning of its own for "none" reads as a dash, as no setting does.
        ("updates.mode", "-"),
        (None, "-"),
    ],
)
def test_no_value_reads_as_the_settings_meaning_of_none(setting: str | None, text: str) -> None:
    assert describe_value(None, setting) == text


def test_the_policy_document_names_each_freeze_with_its_dates(inventories: Path) -> None:
    # riverton's contract: a yearly fiscal freeze and a one-off election freeze.
    document = policy_document(load_client(inventories, "riverton").policy)
    election = next(item for item in document["freezes"] if item["name"] == "municipal election")
    assert {key: election[key] for key in ("start", "end", "yearly", "source")} == {
        "start": "2026-11-02",
        "end": "2026-11-04",
        "yearly": False,
        "source": "contract",
    }


def test_a_level_already_stricter_than_its_sector_keeps_its_own_value(inventories: Path) -> None:
    # riverton: institutional-sla, which requires approval itself; government asks it too.
    policy = load_client(inventories, "riverton").policy
    assert policy.values["updates.approval_required"].value is True
    assert policy.values["updates.approval_required"].source == "level institutional-sla"


def test_a_client_reads_as_itself_and_a_prospect_as_a_prospect(
    inventories: Path, edit_contract
) -> None:
    policy = load_client(inventories, "alpenhof").policy
    assert (policy.client, policy.prospect) == ("alpenhof", False)
    document = policy_document(policy)
    assert (document["client"], document["level"], document["sector"]) == (
        "alpenhof",
        "stability-security",
        "hotel",
    )

    def prospect(data: dict) -> None:
        for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
            data.pop(key, None)

    edit_contract("alpenhof", prospect)
    policy = load_client(inventories, "alpenhof").policy
    assert policy.prospect is True
    # A prospect is read against the first level until one is contracted.
    assert policy.level is Level.STABILITY_SECURITY
    assert policy_document(policy)["level"] == "prospect"


def test_a_prospects_looser_override_is_named_against_the_prospect_baseline(
    inventories: Path, edit_contract
) -> None:
    """A prospect has no level yet: its overrides are held to the baseline a prospect is
    read against, and the refusal says that baseline, not a level it did not buy."""

    def prospect_keeping_too_little(data: dict) -> None:
        for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
            data.pop(key, None)
        data["backup"]["retention"] = {"daily": 1}

    edit_contract("alpenhof", prospect_keeping_too_little)
    with pytest.raises(ContractInvalid) as refused:
        load_client(inventories, "alpenhof")
    assert (
        "backup.retention: 1 daily is looser than the prospect baseline (stability-security) "
        "default of"
    ) in refused.value.message
