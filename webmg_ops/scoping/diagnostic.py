"""The scoping diagnostic: fit or not a fit, the level to recommend, and an action plan.

The rules come from the service description: support is a fit for a
system already in production with real business dependency, availability
requirements, sensitive data or continuity needs; it is not a fit while
the project is not stabilized, the product is experimental, there is no
business owner, or support is expected without governance. The level is
chosen by criticality, business dependency and risk tolerance, never by a
task list. What the hosts show (OS support, pending security updates,
compliance, backups, exposed services, certificates, disk) becomes a
prioritised action plan.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from webmg_ops.config.contract import Contract, FitQuestionnaire, Level, Sector
from webmg_ops.config.policy import LEVEL_DEFAULTS


def budget_marker(level: Level) -> str:
    """Given a level, return its indicative monthly budget, as its policy states it."""
    return str(LEVEL_DEFAULTS[level]["budget.marker"])


_LEVEL_ORDER = (Level.STABILITY_SECURITY, Level.CONTINUOUS_EVOLUTION, Level.INSTITUTIONAL_SLA)


@dataclass(frozen=True)
class Release:
    """A Debian release and the end of its security support."""

    codename: str
    security_until: date
    lts_until: date


#: Debian's published ends of regular security support and of LTS.
DEBIAN_RELEASES: dict[str, Release] = {
    "10": Release("buster", date(2022, 9, 10), date(2024, 6, 30)),
    "11": Release("bullseye", date(2024, 8, 14), date(2026, 8, 31)),
    "12": Release("bookworm", date(2026, 6, 10), date(2028, 6, 30)),
    "13": Release("trixie", date(2028, 8, 9), date(2030, 6, 30)),
}

#: Ports that a web server is expected to expose; anything else listening on
#: every interface is worth a look.
EXPECTED_PUBLIC_PORTS = frozenset({22, 80, 443})

#: Certificates closer than this to expiry are an urgent item.
CERTIFICATE_URGENT = timedelta(days=7)
CERTIFICATE_SOON = timedelta(days=30)

COMPLIANCE_TARGET_PERCENT = 80.0
DISK_RISK_PERCENT = 85


@dataclass(frozen=True)
class FitAssessment:
    """The seed's fit filter applied to a questionnaire."""

    verdict: str  # "fit", "not a fit" or "to clarify"
    fit_reasons: tuple[str, ...]
    not_fit_reasons: tuple[str, ...]
    open_questions: tuple[str, ...]


@dataclass(frozen=True)
class Recommendation:
    """The level to recommend, why, and its budget marker."""

    level: Level
    reasons: tuple[str, ...]
    budget_marker: str
    contracted: str
    note: str = ""


@dataclass(frozen=True)
class PlanItem:
    """One step of the action plan (priority 1 is first)."""

    priority: int
    area: str
    finding: str
    action: str
    hosts: tuple[str, ...] = field(default=())


# --- fit -----------------------------------------------------------------

#: Questions whose answer decides the verdict; unanswered, they must be clarified.
_GATING = {
    "in_production": "Is the system already in production?",
    "stabilized": "Is the system stabilized?",
    "experimental": "Is the product still experimental?",
    "governance_accepted": "Does the client accept governance (windows, approvals, tickets)?",
}

_FIT_RULES = (
    ("in_production", "The system is already in production"),
    ("business_dependency", "There is real business dependency (continuity required)"),
    ("availability_requirements", "Availability requirements exist"),
    ("sensitive_data", "Data is sensitive or regulated"),
    ("evolution_required", "Continuity and evolution are required"),
)


def assess_fit(contract: Contract) -> FitAssessment:
    """Given a contract (a prospect's or a client's), return the fit verdict and its reasons.

    Any not-fit reason makes it "not a fit"; otherwise an unanswered deciding
    question makes it "to clarify"; a system not yet in production, or one
    with nothing for support to protect, is not a fit either.
    """
    fit: FitQuestionnaire = contract.fit
    not_fit: list[str] = []
    if fit.stabilized is False:
        not_fit.append("The project is not stabilized")
    if fit.experimental is True:
        not_fit.append("The product is still experimental")
    if contract.business_owner is None:
        not_fit.append("There is no business owner")
    if fit.governance_accepted is False:
        not_fit.append("Support is expected without governance")
    if fit.in_production is False:
        not_fit.append("The system is not in production yet")
    reasons = tuple(text for name, text in _FIT_RULES if getattr(fit, name) is True)
    questions = tuple(text for name, text in _GATING.items() if getattr(fit, name) is None)
    if not not_fit and not questions and len(reasons) <= 1:
        # In production but nothing depends on it: support would protect nothing.
        not_fit.append("No business dependency, availability, data or continuity requirement")
    if not_fit:
        verdict = "not a fit"
    elif questions:
        verdict = "to clarify"
    else:
        verdict = "fit"
    return FitAssessment(verdict, reasons, tuple(not_fit), questions)


# --- level -----------------------------------------------------------------


def recommend_level(contract: Contract) -> Recommendation:
    """Given a contract, return the level its answers call for, with the reasons.

    Criticality (sensitive or regulated data, availability, a government
    service) calls for the institutional SLA; business dependency with
    iterative delivery calls for continuous evolution; otherwise stability
    and security, which the service description recommends even for a
    professional website.
    """
    fit = contract.fit
    reasons: list[str] = []
    level = Level.STABILITY_SECURITY
    if fit.sensitive_data and (fit.availability_requirements or fit.business_dependency):
        level = Level.INSTITUTIONAL_SLA
        reasons.append(
            "criticality: sensitive or regulated data with availability or continuity "
            "requirements; SLA-backed support is typically required for sensitive systems"
        )
    elif contract.sector is Sector.GOVERNMENT and fit.availability_requirements:
        level = Level.INSTITUTIONAL_SLA
        reasons.append(
            "criticality: a government service with availability requirements "
            "(traceability, compliance, audit)"
        )
    elif fit.evolution_required and fit.business_dependency:
        level = Level.CONTINUOUS_EVOLUTION
        reasons.append("business dependency: a production platform with iterative delivery cycles")
    else:
        reasons.append(
            "risk tolerance: a professional website or non-critical service; "
            "stability and security reduce incidents and protect performance"
        )
    if fit.business_dependency and level is Level.STABILITY_SECURITY:
        reasons.append("business dependency without iterative delivery: stability comes first")
    if fit.availability_requirements and level is not Level.INSTITUTIONAL_SLA:
        reasons.append("availability requirements: monitored by the level's checks")
    contracted = contract.level_name
    note = ""
    if contract.level is not None:
        gap = _LEVEL_ORDER.index(level) - _LEVEL_ORDER.index(contract.level)
        if gap > 0:
            note = f"the contracted level {contracted} is below the recommended one: under-scoped"
        elif gap < 0:
            note = f"the contracted level {contracted} is above what the answers call for"
    return Recommendation(level, tuple(reasons), budget_marker(level), contracted, note)


# --- what the hosts show ---------------------------------------------------------

_VERSION = re.compile(r"^Debian\s+(\d+)")


def os_support(os_text: str, today: date) -> dict[str, Any]:
    """Given an OS description as the check records it and today's date, return its
    support status: ``supported``, ``lts`` (only Debian LTS), ``ended`` or ``unknown``.
    """
    match = _VERSION.match(os_text.strip())
    release = DEBIAN_RELEASES.get(match.group(1)) if match else None
    if release is None:
        return {"os": os_text, "status": "unknown", "detail": "release not in the support table"}
    if today <= release.security_until:
        status, detail = "supported", f"security support until {release.security_until}"
    elif today <= release.lts_until:
        status = "lts"
        detail = (
            f"regular security support ended {release.security_until}; "
            f"LTS until {release.lts_until}"
        )
    else:
        status, detail = "ended", f"no security support since {release.lts_until}"
    return {"os": os_text, "status": status, "detail": detail, "codename": release.codename}


def certificate_expiry(
    url: str, *, timeout: float = 5.0, cafile: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Given a health-check URL, return its TLS state: ``no-tls`` for plain HTTP, else the
    certificate's expiry and days left, or ``error`` with the reason (never raises).
    """
    parts = urlsplit(url)
    if parts.scheme != "https":
        return {"url": url, "status": "no-tls", "detail": "served over plain HTTP"}
    host = parts.hostname or ""
    port = parts.port or 443
    context = ssl.create_default_context(cafile=cafile)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as wrapped,
        ):
            certificate = wrapped.getpeercert()
    except (OSError, ssl.SSLError) as error:
        return {"url": url, "status": "error", "detail": str(error)}
    not_after = str((certificate or {}).get("notAfter", ""))
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    left = expires - (now or datetime.now(UTC))
    status = "expired" if left.total_seconds() <= 0 else "valid"
    return {
        "url": url,
        "status": status,
        "expires": expires.isoformat(),
        "days_left": left.days,
        "detail": f"expires {expires.date()}",
    }


# --- action plan ---------------------------------------------------------------


def _host_items(hosts: Mapping[str, Mapping[str, Any]]) -> list[PlanItem]:
    by_finding: dict[tuple[int, str, str, str], list[str]] = {}

    def add(priority: int, area: str, finding: str, action: str, host: str) -> None:
        by_finding.setdefault((priority, area, finding, action), []).append(host)

    for host, facts in sorted(hosts.items()):
        support = facts.get("os_support") or {}
        if support.get("status") == "ended":
            add(
                1,
                "security",
                f"OS out of support: {support.get('detail')}",
                "Upgrade the OS release",
                host,
            )
        elif support.get("status") == "lts":
            add(
                2,
                "security",
                f"OS in LTS only: {support.get('detail')}",
                "Plan the release upgrade",
                host,
            )
        security = (facts.get("pending_updates") or {}).get("security") or 0
        if security:
            add(1, "security", "security updates pending", "Apply them: webmg-ops update", host)
        for disk in facts.get("disks") or []:
            if int(disk.get("used_percent") or 0) > DISK_RISK_PERCENT:
                add(
                    2,
                    "operations",
                    f"disk {disk.get('mount')} nearly full",
                    "Free or grow the disk",
                    host,
                )
        for port in facts.get("listening_ports") or []:
            if (
                port.get("address") in ("0.0.0.0", "::")
                and port.get("port") not in EXPECTED_PUBLIC_PORTS
            ):
                add(
                    3,
                    "security",
                    f"{port.get('protocol')}/{port.get('port')} listens on every interface",
                    "Confirm the service is needed, else bind it locally or firewall it",
                    host,
                )
    return [
        PlanItem(priority, area, finding, action, tuple(names))
        for (priority, area, finding, action), names in by_finding.items()
    ]


def action_plan(
    fit: FitAssessment,
    recommendation: Recommendation,
    hosts: Mapping[str, Mapping[str, Any]],
    compliance: Mapping[str, Any],
    backups: Mapping[str, Any],
    certificates: Sequence[Mapping[str, Any]],
) -> list[PlanItem]:
    """Given everything the diagnostic found, return the action plan, most urgent first."""
    items: list[PlanItem] = []
    for reason in fit.not_fit_reasons:
        items.append(
            PlanItem(
                1, "scoping", reason, "Settle it with the business owner before support starts"
            )
        )
    for question in fit.open_questions:
        items.append(
            PlanItem(2, "scoping", f"unanswered: {question}", "Answer it in client.yml (fit)")
        )
    if recommendation.note:
        items.append(PlanItem(2, "scoping", recommendation.note, "Review the service level"))
    if not backups.get("last_backup"):
        items.append(
            PlanItem(
                1,
                "data",
                "no verified backup on record",
                "Set up backups and a first restore drill",
            )
        )
    elif backups.get("overdue"):
        items.append(
            PlanItem(
                1,
                "data",
                f"last backup is {backups.get('age')} old",
                "Bring backups back on cadence",
            )
        )
    if not backups.get("last_drill"):
        items.append(
            PlanItem(
                2, "data", "no restore drill on record", "Run a restore drill: webmg-ops drill"
            )
        )
    items.extend(_host_items(hosts))
    for host, data in sorted((compliance.get("hosts") or {}).items()):
        percent = (data.get("score") or {}).get("percent")
        if isinstance(percent, int | float) and percent < COMPLIANCE_TARGET_PERCENT:
            items.append(
                PlanItem(
                    2,
                    "security",
                    f"compliance {percent:.0f}% (target {COMPLIANCE_TARGET_PERCENT:.0f}%)",
                    "Harden: webmg-ops harden",
                    (host,),
                )
            )
    for certificate in certificates:
        status = certificate.get("status")
        url = str(certificate.get("url"))
        days = certificate.get("days_left")
        if status == "expired" or (isinstance(days, int) and days < CERTIFICATE_URGENT.days):
            items.append(
                PlanItem(
                    1,
                    "availability",
                    f"{url}: certificate {certificate.get('detail')}",
                    "Renew the certificate",
                )
            )
        elif isinstance(days, int) and days < CERTIFICATE_SOON.days:
            items.append(
                PlanItem(
                    2,
                    "availability",
                    f"{url}: certificate {certificate.get('detail')}",
                    "Renew the certificate",
                )
            )
        elif status == "no-tls":
            items.append(
                PlanItem(3, "security", f"{url} is served without TLS", "Serve it over HTTPS")
            )
        elif status == "error":
            items.append(
                PlanItem(
                    2,
                    "availability",
                    f"{url}: TLS check failed ({certificate.get('detail')})",
                    "Check the certificate chain",
                )
            )
    return sorted(items, key=lambda item: (item.priority, item.area, item.finding))


def to_document(
    fit: FitAssessment, recommendation: Recommendation, plan: Sequence[PlanItem]
) -> dict[str, Any]:
    """Return the verdict, the recommendation and the plan as JSON-ready data."""
    return {
        "verdict": fit.verdict,
        "fit_reasons": list(fit.fit_reasons),
        "not_fit_reasons": list(fit.not_fit_reasons),
        "open_questions": list(fit.open_questions),
        "recommended_level": recommendation.level.value,
        "level_reasons": list(recommendation.reasons),
        "budget_marker": recommendation.budget_marker,
        "contracted_level": recommendation.contracted,
        "level_note": recommendation.note,
        "action_plan": [{**asdict(item), "hosts": list(item.hosts)} for item in plan],
    }
