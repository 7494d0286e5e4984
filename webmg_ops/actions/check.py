"""The ``check`` action: a read-only look at every host, kept as evidence.

It gathers OS, kernel, uptime, pending updates (security and other), disk
use, listening ports and time sync; pending security updates, a pending
reboot, unsynchronised clocks and nearly full disks are residual risks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webmg_ops.actions.base import Action, ActionOutcome
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import ResidualRisk

PLAYBOOK = "check.yml"

#: Disk use above which a mount is reported as a risk.
DISK_RISK_PERCENT = 85


def _disks(raw: Any) -> list[dict[str, Any]]:
    disks = []
    for disk in raw or []:
        total = int(disk.get("size_total") or 0)
        available = int(disk.get("size_available") or 0)
        used = round((total - available) * 100 / total) if total else 0
        disks.append(
            {
                "mount": disk.get("mount"),
                "used_percent": used,
                "size_bytes": total,
                "available_bytes": available,
            }
        )
    return disks


def _host_evidence(raw: Mapping[str, Any], check: HostPreflight | None) -> dict[str, Any]:
    """Shape one host's raw play output as the run log and reports read it."""
    pending = raw.get("pending_updates") or {}
    security = sorted(pending.get("security") or [])
    other = sorted(pending.get("other") or [])
    sync = raw.get("time_sync") or {}
    return {
        "os": raw.get("os"),
        "kernel": raw.get("kernel"),
        "uptime_s": int(raw.get("uptime_s") or 0),
        "pending_updates": {
            "security": len(security),
            "other": len(other),
            "security_packages": security,
            "other_packages": other,
        },
        "reboot_required": bool(check.reboot_pending) if check else None,
        "free_mb": check.free_mb if check else None,
        "disks": _disks(raw.get("disk")),
        "listening_ports": list(raw.get("listening") or []),
        "time_sync": {
            "synchronized": bool(sync.get("synchronized")),
            "service": "NTP enabled" if sync.get("ntp_enabled") else "NTP disabled",
        },
    }


def _risks(host: str, evidence: Mapping[str, Any]) -> list[ResidualRisk]:
    risks = []
    if evidence["reboot_required"]:
        risks.append(ResidualRisk(host, "a reboot is pending", "kernel or library update"))
    packages = evidence["pending_updates"]["security_packages"]
    if packages:
        risks.append(
            ResidualRisk(
                host, f"{len(packages)} security update(s) pending", ", ".join(packages[:10])
            )
        )
    if not evidence["time_sync"]["synchronized"]:
        risks.append(ResidualRisk(host, "clock not synchronised", evidence["time_sync"]["service"]))
    for disk in evidence["disks"]:
        if disk["used_percent"] > DISK_RISK_PERCENT:
            risks.append(
                ResidualRisk(
                    host, f"{disk['mount']} is {disk['used_percent']}% full", "disk nearly full"
                )
            )
    return risks


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: object = None
) -> ActionOutcome:
    """Given the play's result and preflight, return the check's evidence and risks."""
    hosts = {
        host: _host_evidence(raw, preflight.get(host))
        for host, raw in sorted(result.evidence.items())
    }
    risks = [risk for host, evidence in hosts.items() for risk in _risks(host, evidence)]
    steps = []
    if any(evidence["pending_updates"]["security"] for evidence in hosts.values()):
        steps.append("Apply the pending security updates in the next maintenance window.")
    summary = f"{len(hosts)} host(s) checked, {len(risks)} residual risk(s) found"
    return ActionOutcome(
        evidence={"hosts": hosts},
        residual_risks=tuple(risks),
        next_steps=tuple(steps),
        summary=summary,
    )


ACTION = Action("check", PLAYBOOK, make_outcome=make_outcome)
