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
        "year_before": "A year earlier ({period})",
        "no_year_before": "no data kept",
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
        "sector_education": "Exam and admission periods are freezes of your contract: a "
        "planned change is refused in them; an emergency is recorded with what it went past.",
        "sector_hotel": "Page weight of the booking site is measured by the probes.",
        "sector_peak_season": "Peak season {freeze}: {first} to {last}",
        "sector_peak_latest": "Latest {action} before it: {run}, {at}, {outcome}.",
        "sector_peak_missing": "No {action} recorded before it.",
        "sector_peak_ready": "Ready for the season: as of {at}, the latest backup, restore "
        "drill and update all succeeded.",
        "sector_peak_not_ready": "Not ready for the season as of {at}:",
        "sector_peak_reason_missing": "no {action} run was recorded before it;",
        "sector_peak_reason_failed": "the latest {action} run, {run}, ended {outcome};",
        "sector_peak_none": "No peak-season freeze ahead.",
        "sector_donor_export": "Donor-export check of the backups",
        "sector_donor_export_count": "Backups of the period with the donor export verified: "
        "{verified} of {count}.",
        "sector_donor_export_missing": "Backups without a verified donor export: {runs}.",
        "sector_donor_export_none": "No backup ran during the period: no donor export was "
        "verified.",
        "sector_exam_periods": "Availability during the exam periods",
        "sector_exam_period": "Exam period",
        "sector_exam_dates": "{name} ({first} to {last})",
        "sector_exam_none": "No exam period falls within this period.",
        "no_samples_short": "no samples",
        "sector_audit_export": "Audit export",
        "sector_audit_export_files": "The period's {count} ledger entries are attached beside "
        "this report as {files}, each with its hashes, as the ledger export writes "
        "them.",
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

#: French: formal address (vous), a no-break space before ``: ; ! ?``.
FRENCH: Final = MappingProxyType(
    {
        "title": "Rapport de service",
        "for_client": "{title}\u00a0: {client}, {period}",
        "period_line": "Du {start} au {end} ({timezone}), rapport {cadence}, niveau {level}.",
        "cadence_monthly": "mensuel",
        "cadence_quarterly": "trimestriel",
        "in_progress": "Cette période n'est pas encore terminée\u00a0: les interventions et les "
        "incidents sont comptés jusqu'à la rédaction du rapport, la disponibilité jusqu'au "
        "dernier jour complet.",
        "no_data": "Rien n'a été enregistré pour cette période\u00a0: aucune mesure de "
        "disponibilité, aucun incident, aucune intervention de maintenance.",
        "availability": "Disponibilité",
        "check": "Contrôle",
        "uptime": "Disponibilité mesurée",
        "sla_uptime": "Disponibilité (SLA, hors travaux planifiés)",
        "target": "Objectif",
        "no_target": "pas d'objectif de disponibilité dans le contrat",
        "target_met": "atteint",
        "target_missed": "non atteint",
        "probes": "Mesures",
        "outages": "Interruptions",
        "outage_start": "Début",
        "duration": "Durée",
        "kind": "Nature",
        "planned": "planifiée(s)",
        "unplanned": "non planifiée(s)",
        "more_outages": "Les {shown} plus longues des {count} interruptions sont listées\u00a0; "
        "le document JSON du rapport les contient toutes.",
        "no_outage": "Aucune interruption dans les mesures conservées.",
        "no_samples": "Aucune mesure de disponibilité pour cette période.",
        "chart_title": "Disponibilité quotidienne (%) et latence moyenne (ms)\u00a0: {check}",
        "latency": "Latence (ms)",
        "incidents": "Incidents",
        "severity": "Gravité",
        "opened": "Ouvert",
        "closed": "Clos",
        "still_open": "toujours ouvert",
        "sla_clocks": "Délais contractuels",
        "postmortem": "Analyse post-incident",
        "postmortem_yes": "rédigée",
        "postmortem_no": "aucune",
        "no_incidents": "Aucun incident pendant la période.",
        "actions": "Maintenance effectuée",
        "run": "Intervention",
        "action": "Action",
        "outcome": "Résultat",
        "when": "Date",
        "run_log": "Journal d'intervention",
        "dry_run": "(vérification seule)",
        "no_runs": "Aucune intervention de maintenance pendant la période.",
        "updates_applied": "Mises à jour appliquées\u00a0: {count}",
        "backups_taken": "Sauvegardes effectuées\u00a0: {count}",
        "hardening_runs": "Durcissements effectués\u00a0: {count}",
        "drill_line": "Test de restauration {run}\u00a0: {outcome}, RPO {rpo} (objectif "
        "{rpo_target}), RTO {rto} (objectif {rto_target})",
        "outcome_succeeded": "réussie",
        "outcome_failed": "échouée",
        "outcome_canceled": "annulée",
        "outcome_interrupted": "interrompue",
        "action_diagnose": "diagnostic",
        "action_update": "mise à jour",
        "action_harden": "durcissement",
        "action_backup": "sauvegarde",
        "action_drill": "test de restauration",
        "action_deploy": "déploiement",
        "action_check": "vérification",
        "updates": "Mises à jour appliquées",
        "server": "Serveur",
        "package": "Paquet",
        "version_before": "Avant",
        "version_after": "Après",
        "not_installed": "non installé",
        "rolled_back": "annulée avec son lot\u00a0: la version précédente est rétablie",
        "no_packages": "Aucun paquet n'a été modifié.",
        "no_updates": "Aucune mise à jour pendant la période.",
        "compliance": "Conformité du durcissement",
        "compliance_text": "Le dernier score de conformité mesuré au cours de chacune des "
        "{count} dernières périodes, par un durcissement ou un contrôle de dérive\u00a0: "
        "contrôles réussis sur contrôles applicables, tous serveurs confondus.",
        "compliance_chart_title": "Conformité du durcissement (%), {count} dernières périodes",
        "period": "Période",
        "controls_passed": "Contrôles réussis",
        "not_measured": "non mesurée",
        "no_compliance": "Aucune conformité du durcissement n'a été mesurée au cours des "
        "{count} dernières périodes.",
        "drills": "Tests de restauration",
        "drills_text": "RPO (ancienneté des données restaurées) et RTO (durée de la "
        "restauration) mesurés par chaque test, pour le moins bon de ses serveurs, comparés "
        "aux objectifs du contrat.",
        "drill_chart_title": "{measure} par test, en heures",
        "measured": "mesuré",
        "target_line": "objectif",
        "no_drills": "Aucun test de restauration pendant la période.",
        "governance": "Risques, décisions et travaux",
        "risks_open": "Risques ouverts",
        "risks_accepted": "Risques acceptés",
        "accepted_until": "accepté jusqu'au {until}",
        "decisions": "Décisions de la période",
        "backlog": "Travaux en attente",
        "waits_on": "en attente de\u00a0: {party}",
        "changes_delivered": "Évolutions livrées",
        "none": "Néant.",
        "sector": "Pour votre secteur",
        "sector_page_weight_within": "La page la plus lourde pesait {bytes} octets, dans la "
        "limite du budget de {budget} octets.",
        "sector_page_weight_over": "La page la plus lourde pesait {bytes} octets, au-delà du "
        "budget de {budget} octets\u00a0: vos clients sur réseau mobile attendent plus "
        "longtemps.",
        "sector_page_weight_none": "Aucun poids de page n'a été mesuré pendant la période.",
        "sector_sme": "La disponibilité et la maintenance de votre boutique sont résumées "
        "ci-dessus.",
        "sector_ngo": "Les pages de dons et les données des donateurs sont couvertes par les "
        "sauvegardes et les tests de restauration ci-dessus.",
        "sector_government": "Les enregistrements ci-dessus peuvent être remis tels quels à un "
        "auditeur\u00a0: chacun figure au registre, où toute altération est détectable.",
        "sector_education": "Les périodes d'examens et d'admission sont des périodes de gel de "
        "votre contrat\u00a0: tout changement planifié y est refusé\u00a0; une urgence est "
        "enregistrée avec ce qu'elle a outrepassé.",
        "sector_hotel": "Le poids des pages du site de réservation est mesuré par les sondes.",
        "year_before": "Un an plus tôt ({period})",
        "no_year_before": "aucune donnée conservée",
        "no_samples_short": "aucune mesure",
        "sector_peak_season": "Haute saison {freeze}\u00a0: du {first} au {last}",
        "sector_peak_latest": "Dernière opération «\u00a0{action}\u00a0» avant elle\u00a0: "
        "{run}, {at}, {outcome}.",
        "sector_peak_missing": "Aucune opération «\u00a0{action}\u00a0» enregistrée avant elle.",
        "sector_peak_ready": "Prêt pour la saison\u00a0: au {at}, la dernière sauvegarde, le "
        "dernier exercice de restauration et la dernière mise à jour ont tous réussi.",
        "sector_peak_not_ready": "Pas prêt pour la saison au {at}\u00a0:",
        "sector_peak_reason_missing": "aucune opération «\u00a0{action}\u00a0» n'a été "
        "enregistrée avant elle\u00a0;",
        "sector_peak_reason_failed": "la dernière opération «\u00a0{action}\u00a0», {run}, "
        "s'est terminée ainsi\u00a0: {outcome}\u00a0;",
        "sector_peak_none": "Aucune période de haute saison à venir.",
        "sector_donor_export": "Contrôle de l'export des donateurs dans les sauvegardes",
        "sector_donor_export_count": "Sauvegardes de la période dont l'export des donateurs a "
        "été vérifié\u00a0: {verified} sur {count}.",
        "sector_donor_export_missing": "Sauvegardes sans export des donateurs vérifié\u00a0: "
        "{runs}.",
        "sector_donor_export_none": "Aucune sauvegarde pendant la période\u00a0: aucun export "
        "des donateurs n'a été vérifié.",
        "sector_exam_periods": "Disponibilité pendant les périodes d'examens",
        "sector_exam_period": "Période d'examens",
        "sector_exam_dates": "{name} (du {first} au {last})",
        "sector_exam_none": "Aucune période d'examens dans cette période.",
        "sector_audit_export": "Export d'audit",
        "sector_audit_export_files": "Les {count} entrées du registre de la période sont jointes "
        "à ce rapport sous la forme {files}, chacune avec ses empreintes, comme les écrit "
        "l'export du registre.",
        "proof": "Preuve d'enregistrement",
        "proof_text": "Tous les chiffres ci-dessus proviennent du registre de l'agence. À la fin "
        "de la période, il comptait {seq} entrées, la dernière avec l'empreinte\u00a0:",
        "proof_signed": "Ce point de contrôle est signé par la clé {key} de l'agence.",
        "proof_unsigned": "Ce point de contrôle n'est pas signé (l'agence n'a pas de clé de "
        "signature).",
        "proof_verify": "Toute personne détenant le registre peut vérifier qu'il prolonge "
        "toujours ce point de contrôle\u00a0:",
        "written_at": "Rédigé le {at}.",
    }
)

CATALOGUES: Final = MappingProxyType({"en": ENGLISH, "fr": FRENCH})


def catalogue(language: str = "en") -> MappingProxyType[str, str]:
    """Given a language code, return its catalogue. Raise BadInput for one not written."""
    try:
        return CATALOGUES[language]
    except KeyError:
        raise BadInput(f"no report catalogue for language {language!r}") from None
