"""Every policy setting is read by the code of the capability it belongs to.

``policy`` shows each setting as a promise to the client; a setting that no module
reads is a promise the tool does not keep. The table below, written by hand, names
for each setting the module(s) of webmg_ops that act on it and the text by which
their source names it: the setting's own string, or the expression that builds it
(a cadence through ``policy.cadence(action)``, an incident clock from its row's name).
Settings that no module reads yet are listed apart, as known gaps: the test fails
when a new setting has no reader and when a gap gets a reader without leaving the list.
(engine/plan.py copies a few settings into run-started entries: recording a value is
not acting on it, so it is not named as a reader.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from webmg_ops.config.contract import Level
from webmg_ops.config.policy import LEVEL_DEFAULTS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "webmg_ops"
POLICY_MODULE = "webmg_ops/config/policy.py"


@dataclass(frozen=True)
class Reader:
    """A module of webmg_ops that reads a setting, and the texts its source names it by."""

    module: str
    names: tuple[str, ...]


def literal(module: str, setting: str) -> Reader:
    """Return a reader naming SETTING by its own string, in double quotes."""
    return Reader(module, (f'"{setting}"',))


PRIORITIES = ("p1", "p2", "p3")
IMPACTS = ("availability", "security", "data", "operations")
CRITICALITIES = ("critical", "major", "minor")

INCIDENTS = "webmg_ops/service/incidents.py"
BACKLOG = "webmg_ops/service/backlog.py"
MONITOR = "webmg_ops/monitoring/monitor.py"
DUE = "webmg_ops/schedule/due.py"
#: How the recurring actions' schedule reads every cadence.
DUE_READER = Reader(DUE, ("client.policy.cadence(action)", "for action in RECURRING_ACTIONS"))


def _clock_reader(clock: str) -> Reader:
    # The incident clocks read "<clock>.pN" from the row's name in CLOCKS.
    return Reader(
        INCIDENTS, ('self.policy.get(f"{clock}.{severity.lower()}")', f'"{clock}", "{clock}"')
    )


#: setting -> the modules that read it (by hand, from reading the code).
READERS: dict[str, tuple[Reader, ...]] = {
    "runs.partial_hosts": (literal("webmg_ops/engine/execute.py", "runs.partial_hosts"),),
    "updates.mode": (literal("webmg_ops/actions/update.py", "updates.mode"),),
    "updates.rolling": (literal("webmg_ops/actions/update.py", "updates.rolling"),),
    "updates.batch_percent": (literal("webmg_ops/actions/update.py", "updates.batch_percent"),),
    "updates.approval_required": (
        Reader("webmg_ops/engine/governance.py", ("client.policy.approval_required",)),
    ),
    "cadence.update": (DUE_READER,),
    "cadence.harden": (DUE_READER,),
    "cadence.drift": (DUE_READER,),
    "cadence.backup": (
        DUE_READER,
        Reader("webmg_ops/actions/backup.py", ('client.policy.cadence("backup")',)),
    ),
    "cadence.drill": (
        DUE_READER,
        Reader("webmg_ops/actions/backup.py", ('client.policy.cadence("drill")',)),
    ),
    "cadence.report": (
        DUE_READER,
        Reader("webmg_ops/service/report.py", ('client.policy.cadence("report")',)),
    ),
    "backup.retention": (Reader("webmg_ops/actions/backup.py", ("client.policy.retention",)),),
    **{f"response.{p}": (_clock_reader("response"),) for p in PRIORITIES},
    **{f"restore.{p}": (_clock_reader("restore"),) for p in PRIORITIES},
    **{f"resolution.{p}": (_clock_reader("resolution"),) for p in PRIORITIES},
    **{
        f"severity.{impact}.{criticality}": (
            Reader(INCIDENTS, ("self.policy.get(severity_setting(impact, criticality))",)),
        )
        for impact in IMPACTS
        for criticality in CRITICALITIES
    },
    **{
        f"postmortem.{p}": (
            Reader(INCIDENTS, ('self.policy.get(f"postmortem.{severity.lower()}")',)),
            Reader(BACKLOG, ('policy.get(f"postmortem.{severity.lower()}")',)),
        )
        for p in PRIORITIES
    },
    "clocks.around_the_clock": (literal(INCIDENTS, "clocks.around_the_clock"),),
    "reporting.audit_export": (
        literal("webmg_ops/service/report.py", "reporting.audit_export"),
        literal("webmg_ops/service/report_sectors.py", "reporting.audit_export"),
    ),
    "reporting.link_days": (literal("webmg_ops/service/report_publish.py", "reporting.link_days"),),
    "targets.rpo": (literal("webmg_ops/actions/drill.py", "targets.rpo"),),
    "targets.rto": (literal("webmg_ops/actions/drill.py", "targets.rto"),),
    "targets.availability": (
        literal("webmg_ops/service/report_figures.py", "targets.availability"),
    ),
    "checks.mobile_page_weight": (literal(MONITOR, "checks.mobile_page_weight"),),
    # The report's NGO section reads it; the backup action records no donor-export check yet.
    "budget.marker": (literal("webmg_ops/scoping/diagnostic.py", "budget.marker"),),
    "hardening.evidence_per_control": (
        literal("webmg_ops/actions/harden.py", "hardening.evidence_per_control"),
    ),
    "checks.donor_export": (
        literal("webmg_ops/actions/backup.py", "checks.donor_export"),
        literal("webmg_ops/service/report_sectors.py", "checks.donor_export"),
    ),
    "changes.max_estimate": (literal("webmg_ops/service/changes.py", "changes.max_estimate"),),
    "changes.approval_required": (
        literal("webmg_ops/service/changes.py", "changes.approval_required"),
    ),
    "changes.deploy_allowed": (
        literal("webmg_ops/engine/governance.py", "changes.deploy_allowed"),
    ),
    "escalation.thresholds": (literal("webmg_ops/service/tick.py", "escalation.thresholds"),),
    "backlog.wip_cap": (literal(BACKLOG, "backlog.wip_cap"),),
    "backlog.open_cap": (literal(BACKLOG, "backlog.open_cap"),),
    **{
        f"monitoring.{name}": (literal(MONITOR, f"monitoring.{name}"),)
        for name in (
            "interval",
            "freeze_interval",
            "auto_incidents",
            "failures_to_open",
            "samples_kept",
            "days_kept",
        )
    },
}

#: Settings that ``policy`` shows and no module reads yet: each is to be used by its
#: capability or removed (none today).
KNOWN_GAPS: frozenset[str] = frozenset()


def _settings() -> set[str]:
    return set(LEVEL_DEFAULTS[Level.STABILITY_SECURITY])


def _sources_outside_the_policy() -> dict[str, str]:
    return {
        path.relative_to(REPO).as_posix(): path.read_text()
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(REPO).as_posix() != POLICY_MODULE
    }


def test_every_level_has_the_same_settings() -> None:
    assert all(set(LEVEL_DEFAULTS[level]) == _settings() for level in Level)


def test_every_setting_is_listed_with_its_readers_or_as_a_known_gap() -> None:
    assert not set(READERS) & KNOWN_GAPS
    unlisted = _settings() - set(READERS) - KNOWN_GAPS
    extra = (set(READERS) | KNOWN_GAPS) - _settings()
    assert (sorted(unlisted), sorted(extra)) == ([], [])
    assert all(READERS.values()), "a listed setting names no reader"


@pytest.mark.parametrize("setting", sorted(READERS))
def test_each_reader_names_its_setting(setting: str) -> None:
    for reader in READERS[setting]:
        source = (REPO / reader.module).read_text()
        for text in reader.names:
            assert text in source, f"{reader.module} does not name {setting} by {text!r}"


def test_the_known_gaps_are_exactly_the_settings_no_module_names() -> None:
    # Independent of the table: a setting's string quoted anywhere outside policy.py
    # is a reader. A gap closed (or a new unread setting) must update KNOWN_GAPS.
    sources = _sources_outside_the_policy()
    named_literally = {
        setting
        for setting in _settings()
        if any(f'"{setting}"' in text for text in sources.values())
    }
    unread_literally = _settings() - named_literally
    templated = {
        setting
        for setting, readers in READERS.items()
        if any(text != f'"{setting}"' for reader in readers for text in reader.names)
    }
    assert unread_literally - templated == KNOWN_GAPS


def test_the_accessors_the_readers_use_read_the_named_settings() -> None:
    # The templated readers go through Policy's accessors: each returns its setting.
    from webmg_ops.config.contract import Sector
    from webmg_ops.config.policy import RECURRING_ACTIONS, Policy, PolicyValue

    values = {setting: PolicyValue(object(), "test") for setting in _settings()}
    policy = Policy("x", Level.INSTITUTIONAL_SLA, Sector.SME, values, ())
    for action in RECURRING_ACTIONS:
        assert policy.cadence(action) is values[f"cadence.{action}"].value
    assert policy.retention is values["backup.retention"].value
    for required in (True, False):
        values["updates.approval_required"] = PolicyValue(required, "test")
        assert Policy("x", Level.INSTITUTIONAL_SLA, Sector.SME, values, ()).approval_required is (
            required
        )
    assert set(RECURRING_ACTIONS) == {
        setting.removeprefix("cadence.")
        for setting in _settings()
        if setting.startswith("cadence.")
    }
