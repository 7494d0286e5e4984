"""Every sentence and label of the client's report, in one place per language.

The templates print ``t.<key>`` only, never their own words, so that another
language is one more catalogue here (and a ``language`` passed to the renderer).
Sentences with ``{name}`` fields are filled with :meth:`str.format`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from webmg_ops.errors import BadInput

ENGLISH: Final = MappingProxyType(
    {
        "title": "Service report",
        "for_client": "{title}: {client}, {period}",
        "period_line": "From {start} to {end} ({timezone}), {cadence} report, level {level}.",
        "cadence_monthly": "monthly",
        "cadence_quarterly": "quarterly",
        "in_progress": "This period is not over yet: runs and incidents are counted until "
        "the report was written, availability until the last complete day.",
        "no_data": "Nothing was recorded for this period: no availability samples, "
        "no incidents, no maintenance runs.",
        "availability": "Availability",
        "check": "Check",
        "uptime": "Uptime",
        "sla_uptime": "Uptime (SLA, planned work excluded)",
        "target": "Target",
        "no_target": "no availability target in the contract",
        "target_met": "met",
        "target_missed": "missed",
        "probes": "Probes",
        "outages": "Outages",
        "outage_start": "Start",
        "duration": "Duration",
        "kind": "Kind",
        "planned": "planned",
        "unplanned": "unplanned",
        "more_outages": "The {shown} longest of {count} outages are listed; the JSON "
        "document of the report holds them all.",
        "no_outage": "No outage recorded in the samples kept.",
        "no_samples": "No availability samples for this period.",
        "chart_title": "Daily availability (%) and mean latency (ms): {check}",
        "latency": "Latency (ms)",
        "incidents": "Incidents",
        "severity": "Severity",
        "opened": "Opened",
        "closed": "Closed",
        "still_open": "still open",
        "sla_clocks": "SLA clocks",
        "postmortem": "Post-mortem",
        "postmortem_yes": "recorded",
        "postmortem_no": "none",
        "no_incidents": "No incident during the period.",
        "actions": "Maintenance carried out",
        "run": "Run",
        "action": "Action",
        "outcome": "Outcome",
        "when": "When",
        "run_log": "Run log",
        "dry_run": "(check only)",
        "no_runs": "No maintenance run during the period.",
        "updates_applied": "Update runs applied: {count}",
        "backups_taken": "Backups taken: {count}",
        "hardening_runs": "Hardening runs: {count}",
        "drill_line": "Restore drill {run}: {outcome}, RPO {rpo} (target {rpo_target}), "
        "RTO {rto} (target {rto_target})",
        "outcome_succeeded": "succeeded",
        "outcome_failed": "failed",
        "outcome_canceled": "canceled",
        "outcome_interrupted": "interrupted",
        "action_diagnose": "diagnose",
        "action_update": "update",
        "action_harden": "harden",
        "action_backup": "backup",
        "action_drill": "restore drill",
        "action_deploy": "deploy",
        "action_check": "check",
        "updates": "Updates applied",
        "server": "Server",
        "package": "Package",
        "version_before": "Before",
        "version_after": "After",
        "not_installed": "not installed",
        "rolled_back": "rolled back with its batch: the version before is back",
        "no_packages": "No package was changed.",
        "no_updates": "No update run during the period.",
        "compliance": "Hardening compliance",
        "compliance_text": "The last compliance score measured in each of the last {count} "
        "periods, by a hardening run or a drift check: controls passed out of the controls "
        "that apply, over all servers.",
        "compliance_chart_title": "Hardening compliance (%), last {count} periods",
        "period": "Period",
        "controls_passed": "Controls passed",
        "not_measured": "not measured",
        "no_compliance": "No hardening compliance was measured in the last {count} periods.",
        "drills": "Restore drills",
        "drills_text": "RPO (how old the restored data was) and RTO (how long the restore "
        "took) measured by each drill, the worst of its servers, against the contract's targets.",
        "drill_chart_title": "{measure} per drill, in hours",
        "measured": "measured",
        "target_line": "target",
        "no_drills": "No restore drill during the period.",
        "governance": "Risks, decisions and work",
        "risks_open": "Open risks",
        "risks_accepted": "Accepted risks",
        "accepted_until": "accepted until {until}",
        "decisions": "Decisions of the period",
        "backlog": "Backlog",
        "waits_on": "waits on {party}",
        "changes_delivered": "Changes delivered",
        "none": "None.",
        "sector": "For your sector",
        "sector_page_weight_within": "The heaviest page weighed {bytes} bytes, within the "
        "budget of {budget} bytes.",
        "sector_page_weight_over": "The heaviest page weighed {bytes} bytes, over the budget "
        "of {budget} bytes: guests on mobile networks wait longer.",
        "sector_page_weight_none": "No page weight was measured during the period.",
        "sector_sme": "Your shop's availability and maintenance are summarised above.",
        "sector_ngo": "Donation pages and donor data are covered by the backups and drills above.",
        "sector_government": "The records above can be handed to an auditor as they are: "
        "each one is in the tamper-evident ledger.",
        "sector_education": "Exam and admission periods are the client's freezes: "
        "no planned change ran in them.",
        "sector_hotel": "Page weight of the booking site is measured by the probes.",
        "proof": "Proof of record",
        "proof_text": "Every figure above comes from the agency's ledger. At the end of the "
        "period it held {seq} entries, the last one with hash:",
        "proof_signed": "The checkpoint is signed by the agency's key {key}.",
        "proof_unsigned": "The checkpoint is not signed (no agency signing key).",
        "proof_verify": "Anyone holding the ledger can check that it still extends this "
        "checkpoint:",
        "written_at": "Written {at}.",
    }
)

CATALOGUES: Final = MappingProxyType({"en": ENGLISH})


def catalogue(language: str = "en") -> MappingProxyType[str, str]:
    """Given a language code, return its catalogue. Raise BadInput for one not written."""
    try:
        return CATALOGUES[language]
    except KeyError:
        raise BadInput(f"no report catalogue for language {language!r}") from None
