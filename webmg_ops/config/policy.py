"""Service levels as data, sector presets, and the effective policy of a client.

A policy is what a level implies: update scope, cadences, retention,
response times, approval gates, monitoring, reporting and recovery
targets. The effective policy of a client starts from its level's
defaults, adds its sector's preset, then applies the contract's overrides;
each value remembers where it came from. Presets and contracts may only
tighten a level, never loosen it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from webmg_ops.config.contract import (
    CRITICALITIES,
    IMPACTS,
    PRIORITIES,
    RETENTION_PERIODS,
    Contract,
    Freeze,
    Level,
    Retention,
    Sector,
    UpdateMode,
)
from webmg_ops.config.durations import format_duration

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

#: Actions that recur on a cadence, in the order ``due`` lists them.
RECURRING_ACTIONS: tuple[str, ...] = ("update", "harden", "drift", "backup", "drill", "report")

#: Update scopes from the loosest to the strictest.
UPDATE_MODE_ORDER: tuple[UpdateMode, ...] = ("all", "security", "approved")

#: The level table of the product design, as data. ``None`` for a response
#: time means "next business day"; for a cadence, "not part of the level".
LEVEL_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {
        "runs.partial_hosts": True,
        "updates.mode": "security",
        "updates.rolling": False,
        "updates.batch_percent": 50,
        "updates.approval_required": False,
        "hardening.evidence_per_control": False,
        "cadence.update": 30 * DAY,
        "cadence.harden": 30 * DAY,
        "cadence.drift": None,
        "cadence.backup": DAY,
        "cadence.drill": 91 * DAY,
        "cadence.report": 91 * DAY,
        "backup.retention": Retention(daily=7, weekly=4),
        "response.p1": None,
        "response.p2": None,
        "response.p3": None,
        "reporting.audit_export": False,
        "targets.rpo": 24 * HOUR,
        "targets.rto": 24 * HOUR,
        "checks.mobile_page_weight": False,
        "checks.donor_export": False,
        # Changes (service): the largest estimate one change may carry, and its approval gate.
        "changes.max_estimate": 8 * HOUR,
        "changes.approval_required": False,
        "budget.marker": "from $150 / month",
    },
    Level.CONTINUOUS_EVOLUTION: {
        "runs.partial_hosts": True,
        "updates.mode": "all",
        "updates.rolling": True,
        "updates.batch_percent": 50,
        "updates.approval_required": False,
        "hardening.evidence_per_control": False,
        "cadence.update": 14 * DAY,
        "cadence.harden": 30 * DAY,
        "cadence.drift": 7 * DAY,
        "cadence.backup": DAY,
        "cadence.drill": 30 * DAY,
        "cadence.report": 30 * DAY,
        "backup.retention": Retention(daily=14, weekly=8, monthly=6),
        "response.p1": 8 * HOUR,
        "response.p2": 2 * DAY,
        "response.p3": 5 * DAY,
        "reporting.audit_export": False,
        "targets.rpo": 24 * HOUR,
        "targets.rto": 8 * HOUR,
        "checks.mobile_page_weight": False,
        "checks.donor_export": False,
        # Changes (service): the largest estimate one change may carry, and its approval gate.
        "changes.max_estimate": 16 * HOUR,
        "changes.approval_required": False,
        "budget.marker": "from $500 / month",
    },
    Level.INSTITUTIONAL_SLA: {
        "runs.partial_hosts": False,
        "updates.mode": "approved",
        "updates.rolling": True,
        "updates.batch_percent": 50,
        "updates.approval_required": True,
        "hardening.evidence_per_control": True,
        "cadence.update": 30 * DAY,
        "cadence.harden": 30 * DAY,
        "cadence.drift": DAY,
        "cadence.backup": 6 * HOUR,
        "cadence.drill": 7 * DAY,
        "cadence.report": 30 * DAY,
        # Every 6-hourly restore point of the last two days, then one a day.
        "backup.retention": Retention(hourly=8, daily=14, weekly=8, monthly=12, yearly=2),
        "response.p1": 30 * MINUTE,
        "response.p2": 4 * HOUR,
        "response.p3": DAY,
        "reporting.audit_export": True,
        "targets.rpo": 6 * HOUR,
        "targets.rto": 4 * HOUR,
        "checks.mobile_page_weight": False,
        "checks.donor_export": False,
        # Changes (service): the largest estimate one change may carry, and its approval gate.
        "changes.max_estimate": 16 * HOUR,
        "changes.approval_required": True,
        "budget.marker": "from $1,500 / month",
    },
}

# --- incidents: severity, SLA clocks and post-mortems -------------------

#: The severity table per level: impact -> priority of a (critical, major, minor) incident.
#: A critical incident stops the service or exposes it, whatever its impact: always P1.
#: A major one degrades it for many users: P2; on institutional-sla a major security or
#: data incident is P1 as well, because its clients carry regulatory duties (a breach
#: must be reported within days) that a P2 clock would overrun. A minor one: P3.
SEVERITY_DEFAULTS: dict[Level, dict[str, tuple[str, str, str]]] = {
    Level.STABILITY_SECURITY: {
        "availability": ("P1", "P2", "P3"),
        "security": ("P1", "P2", "P3"),
        "data": ("P1", "P2", "P3"),
        "operations": ("P1", "P2", "P3"),
    },
    Level.CONTINUOUS_EVOLUTION: {
        "availability": ("P1", "P2", "P3"),
        "security": ("P1", "P2", "P3"),
        "data": ("P1", "P2", "P3"),
        "operations": ("P1", "P2", "P3"),
    },
    Level.INSTITUTIONAL_SLA: {
        "availability": ("P1", "P2", "P3"),
        "security": ("P1", "P1", "P3"),
        "data": ("P1", "P1", "P3"),
        "operations": ("P1", "P2", "P3"),
    },
}

#: The incident rows of each level besides the severity table. The response clock is
#: ``response.pN`` above; restore (mitigation) and resolution (fix) follow it. On
#: business-hours levels a day of budget is one business day (so "2d" opened on a
#: Monday morning is due on Wednesday morning), on institutional-sla the clocks run
#: 24/7 and a day is 24 hours. The restore target of a P1 on institutional-sla is its
#: RTO. A P1 always needs a post-mortem; on institutional-sla a P2 as well, for its
#: audit trail.
INCIDENT_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {
        "restore.p1": 2 * DAY,
        "restore.p2": 3 * DAY,
        "restore.p3": 5 * DAY,
        "resolution.p1": 5 * DAY,
        "resolution.p2": 10 * DAY,
        "resolution.p3": 20 * DAY,
        "clocks.around_the_clock": False,
        "postmortem.p1": True,
        "postmortem.p2": False,
        "postmortem.p3": False,
    },
    Level.CONTINUOUS_EVOLUTION: {
        "restore.p1": DAY,
        "restore.p2": 3 * DAY,
        "restore.p3": 10 * DAY,
        "resolution.p1": 3 * DAY,
        "resolution.p2": 5 * DAY,
        "resolution.p3": 20 * DAY,
        "clocks.around_the_clock": False,
        "postmortem.p1": True,
        "postmortem.p2": False,
        "postmortem.p3": False,
    },
    Level.INSTITUTIONAL_SLA: {
        "restore.p1": 4 * HOUR,
        "restore.p2": DAY,
        "restore.p3": 3 * DAY,
        "resolution.p1": 2 * DAY,
        "resolution.p2": 5 * DAY,
        "resolution.p3": 10 * DAY,
        "clocks.around_the_clock": True,
        "postmortem.p1": True,
        "postmortem.p2": True,
        "postmortem.p3": False,
    },
}


def severity_setting(impact: str, criticality: str) -> str:
    """Given an impact and a criticality, return the name of their severity setting."""
    return f"severity.{impact}.{criticality}"


for _level, _rows in SEVERITY_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(
        {
            severity_setting(impact, criticality): priority
            for impact, priorities in _rows.items()
            for criticality, priority in zip(CRITICALITIES, priorities, strict=True)
        }
    )
    LEVEL_DEFAULTS[_level].update(INCIDENT_DEFAULTS[_level])

INCIDENT_DESCRIPTIONS: dict[str, str] = {
    **{
        severity_setting(impact, criticality): f"priority of a {criticality} {impact} incident"
        for impact in IMPACTS
        for criticality in CRITICALITIES
    },
    **{
        f"restore.{p.lower()}": f"time to restore the service (mitigation), priority {p[1]}"
        for p in PRIORITIES
    },
    **{
        f"resolution.{p.lower()}": f"time to resolve the cause (fix), priority {p[1]}"
        for p in PRIORITIES
    },
    "clocks.around_the_clock": "SLA clocks run 24/7 (otherwise in business hours)",
    **{
        f"postmortem.{p.lower()}": f"a post-mortem is required to close a priority {p[1]} incident"
        for p in PRIORITIES
    },
}

# --- end of the incident rows ---------------------------------------------

# --- escalation: when the contract's escalation path is notified ------------

#: The shares of an SLA clock's budget, in percent, at which the escalation path is
#: notified: half-way (time to act) and at the breach. On institutional-sla at three
#: quarters as well: its clocks run 24/7 and a P1's response time is 30 minutes, so a
#: second warning before the breach leaves its on-call someone still able to meet it.
ESCALATION_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {"escalation.thresholds": (50, 100)},
    Level.CONTINUOUS_EVOLUTION: {"escalation.thresholds": (50, 100)},
    Level.INSTITUTIONAL_SLA: {"escalation.thresholds": (50, 75, 100)},
}
for _level, _rows in ESCALATION_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(_rows)

ESCALATION_DESCRIPTIONS: dict[str, str] = {
    "escalation.thresholds": "escalation notified at these shares of an SLA clock's budget",
}


def _thresholds_are_looser(candidate: Any, baseline: Any) -> bool:
    # Fewer warnings are looser: a contract may add thresholds, never drop one.
    return not set(baseline) <= set(candidate)


ESCALATION_OVERRIDES: dict[tuple[str, ...], str] = {
    ("incidents", "escalation_thresholds"): "escalation.thresholds",
}

# --- end of the escalation rows ---------------------------------------------
# --- backlog: caps on work in progress and open items ---------------------

#: The backlog's caps per level: how many items may be in progress at once (WIP) and
#: how many may be open (no infinite backlog). A change request past the open-items cap,
#: or a start past the WIP cap, is refused until an item is finished or the client
#: deprioritises one. Smaller is tighter: a contract may lower a cap, never raise it.
BACKLOG_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {"backlog.wip_cap": 2, "backlog.open_cap": 10},
    Level.CONTINUOUS_EVOLUTION: {"backlog.wip_cap": 3, "backlog.open_cap": 20},
    Level.INSTITUTIONAL_SLA: {"backlog.wip_cap": 3, "backlog.open_cap": 15},
}

BACKLOG_DESCRIPTIONS: dict[str, str] = {
    "backlog.wip_cap": "backlog items in progress at once, at most",
    "backlog.open_cap": "open backlog items (not deprioritised) before new changes are refused",
}

BACKLOG_OVERRIDES: dict[tuple[str, ...], str] = {
    ("backlog", "wip_cap"): "backlog.wip_cap",
    ("backlog", "open_cap"): "backlog.open_cap",
}

for _level, _rows in BACKLOG_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(_rows)

# --- end of the backlog rows ------------------------------------------------
# --- deploy: which levels may deploy an application version -----------------

#: Whether a change's deploy (``run CLIENT deploy --change CHG-n``) may run at all. The
#: stability-security level keeps the application as it is (updates and hardening only);
#: continuous-evolution and institutional-sla ship the client's application versions.
#: Allowing is looser: a contract may forbid deploys, never allow them where the level
#: does not.
DEPLOY_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {"changes.deploy_allowed": False},
    Level.CONTINUOUS_EVOLUTION: {"changes.deploy_allowed": True},
    Level.INSTITUTIONAL_SLA: {"changes.deploy_allowed": True},
}

DEPLOY_DESCRIPTIONS: dict[str, str] = {
    "changes.deploy_allowed": "application versions are deployed (a change's deploy run)",
}

DEPLOY_OVERRIDES: dict[tuple[str, ...], str] = {
    ("changes", "deploy_allowed"): "changes.deploy_allowed",
}

for _level, _rows in DEPLOY_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(_rows)

# --- end of the deploy rows -------------------------------------------------

# --- monitoring: availability probes, detection and the samples kept --------

#: How often ``monitor`` probes a client's health checks (None: availability is not
#: monitored on the level), how often during the client's freezes (None: as usual), how
#: many failures in a row open an incident (where incidents are opened automatically),
#: and how long samples are kept: raw samples for a few weeks, their daily aggregates for
#: more than 13 months, so that a report can compare a month with the same month a year
#: earlier. The institutional-sla level keeps a quarter of raw samples and two years of
#: days for its audits.
MONITORING_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {
        "monitoring.interval": None,
        "monitoring.freeze_interval": None,
        "monitoring.auto_incidents": False,
        "monitoring.failures_to_open": 3,
        "monitoring.samples_kept": 35 * DAY,
        "monitoring.days_kept": 400 * DAY,
    },
    Level.CONTINUOUS_EVOLUTION: {
        "monitoring.interval": 5 * MINUTE,
        "monitoring.freeze_interval": None,
        "monitoring.auto_incidents": False,
        "monitoring.failures_to_open": 3,
        "monitoring.samples_kept": 35 * DAY,
        "monitoring.days_kept": 400 * DAY,
    },
    Level.INSTITUTIONAL_SLA: {
        "monitoring.interval": MINUTE,
        "monitoring.freeze_interval": None,
        "monitoring.auto_incidents": True,
        "monitoring.failures_to_open": 3,
        "monitoring.samples_kept": 95 * DAY,
        "monitoring.days_kept": 800 * DAY,
    },
}

MONITORING_DESCRIPTIONS: dict[str, str] = {
    "monitoring.interval": "availability probe every",
    "monitoring.freeze_interval": "availability probe every, during the client's freezes",
    "monitoring.auto_incidents": "incidents opened automatically when a probe keeps failing",
    "monitoring.failures_to_open": "failed probes in a row before an incident opens",
    "monitoring.samples_kept": "probe samples kept",
    "monitoring.days_kept": "daily availability aggregates kept",
}

for _level, _rows in MONITORING_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(_rows)


def _kept_is_looser(candidate: Any, baseline: Any) -> bool:
    # Keeping data for a shorter time is looser.
    return bool(candidate < baseline)


# --- end of the monitoring rows ---------------------------------------------
# --- publishing: how long a published report's links stay valid -------------

#: How many days the presigned links of a published report (``report --publish``) grant
#: read access to its files. S3's signature (SigV4) caps a presigned link at 7 days, so 7
#: is the longest and the default on every level; a shorter life is tighter: a contract
#: may shorten it (1 to 7 days, validated with the contract), never lengthen it.
PUBLISH_DEFAULTS: dict[Level, dict[str, Any]] = {
    level: {"reporting.link_days": 7} for level in Level
}

PUBLISH_DESCRIPTIONS: dict[str, str] = {
    "reporting.link_days": "days a published report's links stay valid (1 to 7: S3's cap)",
}

PUBLISH_OVERRIDES: dict[tuple[str, ...], str] = {
    ("reporting", "link_days"): "reporting.link_days",
}

for _level, _rows in PUBLISH_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(_rows)

# A whole number of days is compared as the other durations are (the default rule of
# ``is_looser``): a longer life is looser.

# --- end of the publishing rows ---------------------------------------------

# --- availability: the SLA uptime a level promises --------------------------

#: The availability target per level, in percent of probes up with planned work left
#: out (the report's SLA uptime): none on stability-security, whose availability is not
#: monitored, 99.5 on continuous-evolution, 99.9 on institutional-sla. A lower target is
#: looser: a contract may raise it, never lower it.
AVAILABILITY_DEFAULTS: dict[Level, dict[str, Any]] = {
    Level.STABILITY_SECURITY: {"targets.availability": None},
    Level.CONTINUOUS_EVOLUTION: {"targets.availability": 99.5},
    Level.INSTITUTIONAL_SLA: {"targets.availability": 99.9},
}

AVAILABILITY_DESCRIPTIONS: dict[str, str] = {
    "targets.availability": (
        "availability target, SLA uptime in percent (none on stability-security, "
        "99.5 on continuous-evolution, 99.9 on institutional-sla)"
    ),
}

AVAILABILITY_OVERRIDES: dict[tuple[str, ...], str] = {
    ("targets", "availability"): "targets.availability",
}

for _level, _rows in AVAILABILITY_DEFAULTS.items():
    LEVEL_DEFAULTS[_level].update(_rows)


def _target_is_looser(candidate: Any, baseline: Any) -> bool:
    # No target is the loosest; any target is tighter than none, a lower one looser.
    if baseline is None:
        return False
    return candidate is None or float(candidate) < float(baseline)


# --- end of the availability rows -------------------------------------------

#: What each setting means, shown by ``webmg-ops policy``.
DESCRIPTIONS: dict[str, str] = {
    "runs.partial_hosts": "a run goes on with the hosts that pass preflight when others fail it",
    "updates.mode": "update scope (security, all, or approved versions only)",
    "updates.rolling": "hosts updated in health-gated batches, canary first",
    "updates.batch_percent": "share of the run's hosts per batch after the canary, in percent",
    "updates.approval_required": "a recorded approval is needed before each change",
    "hardening.evidence_per_control": "compliance evidence kept for every control",
    "cadence.update": "controlled updates every",
    "cadence.harden": "hardening baseline enforced every",
    "cadence.drift": "hardening drift check every",
    "cadence.backup": "verified backup every",
    "cadence.drill": "restore drill every",
    "cadence.report": "client report every",
    "backup.retention": "snapshots kept",
    "response.p1": "response time, priority 1",
    "response.p2": "response time, priority 2",
    "response.p3": "response time, priority 3",
    "reporting.audit_export": "audit export with each report",
    "targets.rpo": "recovery point objective (checked by drills)",
    "targets.rto": "recovery time objective (checked by drills)",
    "checks.mobile_page_weight": "mobile page-weight check of offer pages",
    "checks.donor_export": "donor-export check in backups",
    "changes.max_estimate": "largest estimate of one change; a larger one must be split",
    "changes.approval_required": "a change needs a recorded approval before it is deployed",
    "budget.marker": "indicative budget",
    **INCIDENT_DESCRIPTIONS,
    **ESCALATION_DESCRIPTIONS,
    **BACKLOG_DESCRIPTIONS,
    **DEPLOY_DESCRIPTIONS,
    **MONITORING_DESCRIPTIONS,
    **AVAILABILITY_DESCRIPTIONS,
    **PUBLISH_DESCRIPTIONS,
}


@dataclass(frozen=True)
class SectorPreset:
    """What a sector adds to every level: tighter settings and yearly freezes."""

    settings: dict[str, Any] = field(default_factory=dict)
    freezes: tuple[Freeze, ...] = ()


# Yearly freezes ignore the year; 2000 is a leap year, so 29 February is valid.
SECTOR_PRESETS: dict[Sector, SectorPreset] = {
    Sector.HOTEL: SectorPreset(
        # The page-weight check is a probe of the monitor: a hotel is probed every 15 minutes
        # at least, even on a level that does not monitor availability.
        settings={"checks.mobile_page_weight": True, "monitoring.interval": 15 * MINUTE},
        freezes=(
            Freeze(
                name="summer season",
                start=date(2000, 7, 1),
                end=date(2000, 8, 31),
                yearly=True,
                reason="peak season: bookings and offer pages must not be disturbed",
            ),
        ),
    ),
    Sector.EDUCATION: SectorPreset(
        # Exam and admission periods (its freezes) are when availability matters most:
        # probed every minute then, every 5 minutes otherwise.
        settings={"monitoring.interval": 5 * MINUTE, "monitoring.freeze_interval": MINUTE},
        freezes=(
            Freeze(
                name="winter exams",
                start=date(2000, 1, 12),
                end=date(2000, 1, 23),
                yearly=True,
                reason="exam period: availability first",
            ),
            Freeze(
                name="summer exams",
                start=date(2000, 6, 1),
                end=date(2000, 6, 30),
                yearly=True,
                reason="exam and admissions period",
            ),
        ),
    ),
    Sector.GOVERNMENT: SectorPreset(
        settings={
            "updates.approval_required": True,
            "reporting.audit_export": True,
            "hardening.evidence_per_control": True,
            "cadence.drift": DAY,
            "changes.approval_required": True,
        },
    ),
    Sector.NGO: SectorPreset(settings={"checks.donor_export": True}),
    Sector.SME: SectorPreset(settings={"cadence.update": 30 * DAY, "cadence.report": 30 * DAY}),
}


# --- strictness: how a tighter value compares with a looser one ---------


def _duration_is_looser(candidate: Any, baseline: Any) -> bool:
    # None is "not part of the level" for cadences and "next business day"
    # for response times: any duration is tighter than None.
    if baseline is None:
        return False
    return candidate is None or candidate > baseline


def _flag_is_looser(candidate: Any, baseline: Any) -> bool:
    return bool(baseline) and not bool(candidate)


def _mode_is_looser(candidate: Any, baseline: Any) -> bool:
    return UPDATE_MODE_ORDER.index(candidate) < UPDATE_MODE_ORDER.index(baseline)


def _retention_is_looser(candidate: Any, baseline: Any) -> bool:
    return any(
        getattr(candidate, period) < getattr(baseline, period) for period in RETENTION_PERIODS
    )


def _never_looser(candidate: Any, baseline: Any) -> bool:
    return False


def _permission_is_looser(candidate: Any, baseline: Any) -> bool:
    return bool(candidate) and not bool(baseline)


def _priority_is_looser(candidate: Any, baseline: Any) -> bool:
    # P1 is the most urgent: a later priority in the list is looser.
    return PRIORITIES.index(candidate) > PRIORITIES.index(baseline)


_LOOSER_THAN: dict[str, Callable[[Any, Any], bool]] = {
    "runs.partial_hosts": _permission_is_looser,
    "updates.mode": _mode_is_looser,
    "backup.retention": _retention_is_looser,
    "budget.marker": _never_looser,
    "escalation.thresholds": _thresholds_are_looser,
    "changes.deploy_allowed": _permission_is_looser,
    "monitoring.samples_kept": _kept_is_looser,
    "monitoring.days_kept": _kept_is_looser,
    "targets.availability": _target_is_looser,
    **{
        severity_setting(impact, criticality): _priority_is_looser
        for impact in IMPACTS
        for criticality in CRITICALITIES
    },
}


def is_looser(setting: str, candidate: Any, baseline: Any) -> bool:
    """Given a setting name and two values, return whether ``candidate`` loosens ``baseline``."""
    compare = _LOOSER_THAN.get(setting)
    if compare is None:
        compare = _flag_is_looser if isinstance(baseline, bool) else _duration_is_looser
    return compare(candidate, baseline)


def stricter(setting: str, first: Any, second: Any) -> Any:
    """Given two values of one setting, return the stricter of them."""
    return first if is_looser(setting, second, first) else second


# --- the effective policy -----------------------------------------------


@dataclass(frozen=True)
class PolicyValue:
    """One setting of the effective policy and where it came from."""

    value: Any
    source: str


@dataclass(frozen=True)
class PolicyFreeze:
    """A freeze in force for a client and where it came from."""

    freeze: Freeze
    source: str


@dataclass(frozen=True)
class Loosening:
    """A contract value that would loosen the level: the reason it is refused."""

    field_path: tuple[str | int, ...]
    message: str


@dataclass(frozen=True)
class Policy:
    """The effective policy of one client."""

    client: str
    level: Level
    sector: Sector
    values: Mapping[str, PolicyValue]
    freezes: tuple[PolicyFreeze, ...]
    #: No level is contracted yet: ``level`` is only the baseline values are read from.
    prospect: bool = False

    def get(self, setting: str) -> Any:
        """Given a setting name, return its effective value. Raise KeyError if unknown."""
        return self.values[setting].value

    def cadence(self, action: str) -> timedelta | None:
        """Given a recurring action, return how often it must run (None: not required)."""
        value: timedelta | None = self.get(f"cadence.{action}")
        return value

    @property
    def update_mode(self) -> UpdateMode:
        """Return the update scope in force."""
        mode: UpdateMode = self.get("updates.mode")
        return mode

    @property
    def approval_required(self) -> bool:
        """Return whether each change needs a recorded approval."""
        return bool(self.get("updates.approval_required"))

    @property
    def retention(self) -> Retention:
        """Return the backup retention in force."""
        retention: Retention = self.get("backup.retention")
        return retention


#: Contract field path -> policy setting that it overrides.
CONTRACT_OVERRIDES: dict[tuple[str, ...], str] = {
    ("updates", "mode"): "updates.mode",
    ("updates", "batch_percent"): "updates.batch_percent",
    ("backup", "retention"): "backup.retention",
    **{("cadences", action): f"cadence.{action}" for action in RECURRING_ACTIONS},
    **{("response_times", p): f"response.{p}" for p in ("p1", "p2", "p3")},
    ("targets", "rpo"): "targets.rpo",
    ("targets", "rto"): "targets.rto",
    ("changes", "max_estimate"): "changes.max_estimate",
    ("changes", "approval_required"): "changes.approval_required",
    **{
        ("incidents", "severity", impact, criticality): severity_setting(impact, criticality)
        for impact in IMPACTS
        for criticality in CRITICALITIES
    },
    **{("incidents", "restore_times", p): f"restore.{p}" for p in ("p1", "p2", "p3")},
    **{("incidents", "resolution_times", p): f"resolution.{p}" for p in ("p1", "p2", "p3")},
    ("incidents", "around_the_clock"): "clocks.around_the_clock",
    **{("incidents", "postmortem", p): f"postmortem.{p}" for p in ("p1", "p2", "p3")},
    **ESCALATION_OVERRIDES,
    **BACKLOG_OVERRIDES,
    **DEPLOY_OVERRIDES,
    **AVAILABILITY_OVERRIDES,
    **PUBLISH_OVERRIDES,
}


def _contract_value(contract: Contract, path: tuple[str, ...]) -> Any:
    value: Any = contract
    for part in path:
        value = getattr(value, part)
    return value


#: What "no value" means for the settings that may have none, as a person reads it: a
#: level without a response time answers the next business day, a cadence of None is
#: not part of the level, and so on. A setting missing here shows "-".
NONE_MEANINGS: dict[str, str] = {
    **{f"response.{p.lower()}": "next business day" for p in PRIORITIES},
    **{f"cadence.{action}": "not part of the level" for action in RECURRING_ACTIONS},
    "monitoring.interval": "not monitored",
    "monitoring.freeze_interval": "as outside freezes",
    "targets.availability": "no target",
}

#: Month abbreviations, in English whatever the machine's locale.
MONTHS: tuple[str, ...] = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def describe_value(value: Any, setting: str | None = None) -> str:
    """Given a policy value (and the setting it belongs to), return it as a person reads it.

    No value reads as the setting's meaning of none (``NONE_MEANINGS``), else "-".
    """
    if value is None:
        return NONE_MEANINGS.get(setting, "-") if setting is not None else "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Retention):
        kept = [f"{count} {period}" for period, count in value.model_dump().items() if count]
        return ", ".join(kept) or "none"
    if isinstance(value, tuple):
        return ", ".join(f"{share}%" for share in value)
    return str(value)


def describe_freeze_dates(freeze: Freeze) -> str:
    """Given a freeze, return its days as a person reads them.

    A yearly freeze ignores the year of its dates: "every year, 1 Jul → 31 Aug";
    a one-off freeze gives its dates in full: "2026-07-01 → 2026-08-31".
    """
    if freeze.yearly:
        start, end = (f"{day.day} {MONTHS[day.month - 1]}" for day in (freeze.start, freeze.end))
        return f"every year, {start} → {end}"
    return f"{freeze.start.isoformat()} → {freeze.end.isoformat()}"


def find_loosenings(contract: Contract) -> list[Loosening]:
    """Given a contract, return every override that would loosen its level and sector."""
    baseline = _level_and_sector_values(
        baseline_level(contract), contract.sector, contract.is_prospect
    )
    problems: list[Loosening] = []
    for path, setting in CONTRACT_OVERRIDES.items():
        value = _contract_value(contract, path)
        if value is None:
            continue
        current = baseline[setting]
        if is_looser(setting, value, current.value):
            problems.append(
                Loosening(
                    field_path=path,
                    message=(
                        f"{describe_value(value, setting)} is looser than the "
                        f"{current.source} default of {describe_value(current.value, setting)} "
                        f"({DESCRIPTIONS[setting]}); a contract may only tighten its level"
                    ),
                )
            )
    return problems


def _level_and_sector_values(
    level: Level, sector: Sector, prospect: bool = False
) -> dict[str, PolicyValue]:
    # A prospect has no level: its values are the baseline's, and say so.
    source = f"prospect baseline ({level.value})" if prospect else f"level {level.value}"
    values = {
        setting: PolicyValue(value, source) for setting, value in LEVEL_DEFAULTS[level].items()
    }
    for setting, value in SECTOR_PRESETS[sector].settings.items():
        if is_looser(setting, values[setting].value, value):
            values[setting] = PolicyValue(value, f"sector {sector.value}")
    return values


#: The level whose values a prospect's policy shows until a level is contracted.
PROSPECT_BASELINE = Level.STABILITY_SECURITY


def baseline_level(contract: Contract) -> Level:
    """Given a contract, return its level, or the prospect baseline when it has none."""
    return contract.level if contract.level is not None else PROSPECT_BASELINE


def effective_policy(contract: Contract) -> Policy:
    """Given a valid contract, return its effective policy.

    Contract overrides that would loosen the level are ignored here; the
    loader refuses such contracts first (:func:`find_loosenings`).
    """
    values = _level_and_sector_values(
        baseline_level(contract), contract.sector, contract.is_prospect
    )
    for path, setting in CONTRACT_OVERRIDES.items():
        value = _contract_value(contract, path)
        if value is not None and not is_looser(setting, value, values[setting].value):
            values[setting] = PolicyValue(value, "contract")
    freezes = tuple(
        PolicyFreeze(freeze, f"sector {contract.sector.value}")
        for freeze in SECTOR_PRESETS[contract.sector].freezes
    ) + tuple(PolicyFreeze(freeze, "contract") for freeze in contract.freezes)
    return Policy(
        client=contract.name,
        level=baseline_level(contract),
        sector=contract.sector,
        prospect=contract.is_prospect,
        values=values,
        freezes=freezes,
    )


def policy_document(policy: Policy) -> dict[str, Any]:
    """Given a policy, return it as a JSON-ready document with each value's source."""
    return {
        "client": policy.client,
        "level": "prospect" if policy.prospect else policy.level.value,
        "sector": policy.sector.value,
        "settings": {
            setting: {
                "value": _json_value(value.value),
                "source": value.source,
                "description": DESCRIPTIONS[setting],
            }
            for setting, value in policy.values.items()
        },
        "freezes": [
            {
                "name": item.freeze.name,
                "start": item.freeze.start.isoformat(),
                "end": item.freeze.end.isoformat(),
                "yearly": item.freeze.yearly,
                "when": describe_freeze_dates(item.freeze),
                "reason": item.freeze.reason,
                "source": item.source,
            }
            for item in policy.freezes
        ],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Retention):
        return value.model_dump()
    if isinstance(value, tuple):
        return list(value)
    return value
