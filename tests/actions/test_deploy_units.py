"""The ``deploy`` action without hosts: the update play's extra vars planned from what a
change deploys (a pure function of the client, the hosts and the change's versions), and
the deploy's outcome read from the play's evidence.

Expectations are the rule stated independently: terre-solidaire (continuous-evolution)
rolls a canary, then half of the run's hosts (rounded down, at least one) per batch; each
web node is gated by the health check whose URL names its address; the db host by none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from webmg_ops.actions import deploy
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.runs.records import HostResult, HostStatus, RunRequest

HOSTS = ("terre-web1", "terre-web2", "terre-db1")
APP = {"webmg-demo-app": "1.1"}


def test_the_play_installs_exactly_the_changes_versions_in_the_updates_batches(
    inventories: Path,
) -> None:
    terre = load_client(inventories, "terre-solidaire")
    extra = deploy.deploy_vars(terre, HOSTS, APP, check=False)
    assert extra == {
        "updates_mode": "approved",
        "updates_holds": [],
        "updates_approved_versions": {"webmg-demo-app": "1.1"},
        "updates_health_checks_by_host": {
            "terre-web1": [
                {
                    "name": "donation platform (node 1)",
                    "url": "http://198.18.0.21/health",
                    "expect_status": 200,
                    "max_latency_ms": 1000,
                }
            ],
            "terre-web2": [
                {
                    "name": "donation platform (node 2)",
                    "url": "http://198.18.0.22/health",
                    "expect_status": 200,
                    "max_latency_ms": 1000,
                }
            ],
            "terre-db1": [],
        },
        # The canary, then 50 % of 3 hosts (1) per batch.
        "updates_serial": [1, 1, 1],
    }
    # A dry run changes nothing: one batch, nothing to gate between batches.
    assert deploy.deploy_vars(terre, HOSTS, APP, check=True)["updates_serial"] == [3]


def test_the_contracts_holds_still_apply(inventories: Path) -> None:
    riverton = load_client(inventories, "riverton")
    hosts = ("riverton-web1", "riverton-web2", "riverton-db1")
    extra = deploy.deploy_vars(riverton, hosts, {"webmg-demo-app": "1:1.2-1"}, check=False)
    assert extra["updates_holds"] == ["postgresql-15"]
    # Not the contract's approved-versions file: exactly what the change names.
    assert extra["updates_approved_versions"] == {"webmg-demo-app": "1:1.2-1"}


def test_a_run_may_not_set_what_the_change_and_contract_set(inventories: Path) -> None:
    terre = load_client(inventories, "terre-solidaire")
    for name in ("updates_mode", "updates_approved_versions", "updates_holds", "updates_serial"):
        request = RunRequest(
            "terre-solidaire", "deploy", deploys=APP, extra_vars={name: "x"}, change="CHG-1"
        )
        with pytest.raises(BadInput, match=f"{name} come from the contract and policy"):
            deploy.make_extra_vars(terre, HOSTS, request)
    with pytest.raises(BadInput, match="deploy needs a change naming the version"):
        deploy.make_extra_vars(terre, HOSTS, RunRequest("terre-solidaire", "deploy"))
    planned = deploy.make_extra_vars(
        terre,
        HOSTS,
        RunRequest(
            "terre-solidaire", "deploy", deploys=APP, extra_vars={"updates_lock_timeout": 9}
        ),
    )
    assert planned["updates_lock_timeout"] == 9
    assert planned["updates_approved_versions"] == APP


def _raw(host: str, before: str | None, after: str | None, **changes: Any) -> dict[str, Any]:
    """A host's evidence as the update role publishes it in approved mode."""
    raw: dict[str, Any] = {
        "mode": "approved",
        "check": False,
        "at": "2026-05-05T21:15:00Z",
        "batch": [host],
        "batch_ready": True,
        "batch_healthy": True,
        "plan": [],
        "held": [],
        "not_applicable": [],
        "install_error": None,
        "updated_from": [],
        "updated_to": [],
        "services_before": {},
        "services_after": {},
        "reboot_required": False,
        "reboot_packages": [],
        "health_before": {"ok": True, "checks": []},
        "health_after": {"ok": True, "checks": []},
        "rollback": None,
        "approved": dict(APP),
        "approved_before": {"webmg-demo-app": before},
        "approved_after": {"webmg-demo-app": after},
    }
    if before and after and before != after:
        raw["plan"] = [{"name": "webmg-demo-app", "old": before, "new": after, "origin": "x"}]
        raw["updated_from"] = [f"webmg-demo-app={before}"]
        raw["updated_to"] = [f"webmg-demo-app={after}"]
    raw.update(changes)
    return raw


def _result(evidence: dict[str, Any], statuses: dict[str, HostStatus]) -> PlaybookResult:
    failed = HostStatus.FAILED in statuses.values()
    return PlaybookResult(
        status="failed" if failed else "successful",
        rc=2 if failed else 0,
        hosts=tuple(HostResult(host=h, status=s) for h, s in statuses.items()),
        evidence=evidence,
        canceled=False,
        duration_s=5.0,
    )


def test_the_outcome_records_versions_before_and_after_per_host() -> None:
    result = _result(
        {
            "terre-web1": _raw("terre-web1", "1.0", "1.1"),
            "terre-web2": _raw("terre-web2", "1.0", "1.1"),
            "terre-db1": _raw("terre-db1", None, None),
        },
        dict.fromkeys(HOSTS, HostStatus.CHANGED),
    )
    outcome = deploy.make_outcome(result, {})
    assert outcome.evidence["deployment"] == {
        "packages": {"webmg-demo-app": "1.1"},
        "hosts": {
            "terre-db1": {"webmg-demo-app": {"before": None, "after": None}},
            "terre-web1": {"webmg-demo-app": {"before": "1.0", "after": "1.1"}},
            "terre-web2": {"webmg-demo-app": {"before": "1.0", "after": "1.1"}},
        },
        "not_deployed": {},
    }
    assert outcome.hosts == ()  # nothing to correct: the play's results stand
    assert outcome.summary.startswith("webmg-demo-app 1.1 on 2 of 2 host(s) running it")


def test_a_host_left_at_another_version_fails_the_deploy() -> None:
    """Approved mode skips a version it cannot install; a deploy must not pass for done."""
    missing = [
        {
            "name": "webmg-demo-app",
            "version": "1.1",
            "reason": "approved version 1.1 is not available from the configured sources",
        }
    ]
    result = _result(
        {
            "terre-web1": _raw("terre-web1", "1.0", "1.1"),
            "terre-web2": _raw("terre-web2", "1.0", "1.0", not_applicable=missing),
        },
        {"terre-web1": HostStatus.CHANGED, "terre-web2": HostStatus.OK},
    )
    outcome = deploy.make_outcome(result, {})
    (failed,) = outcome.hosts
    assert (failed.host, failed.status) == ("terre-web2", HostStatus.FAILED)
    assert failed.note == (
        "webmg-demo-app is at 1.0, not 1.1: approved version 1.1 is not available from the "
        "configured sources"
    )
    assert outcome.evidence["deployment"]["not_deployed"] == {"terre-web2": failed.note}
    assert any("deploy the change again" in step for step in outcome.next_steps)


def test_a_package_on_no_host_deploys_nothing_and_fails() -> None:
    result = _result({"terre-db1": _raw("terre-db1", None, None)}, {"terre-db1": HostStatus.OK})
    (failed,) = deploy.make_outcome(result, {}).hosts
    assert (failed.status, failed.note) == (
        HostStatus.FAILED,
        "webmg-demo-app is installed on no host of the run",
    )


def test_a_halted_window_keeps_the_updates_account_of_the_rollback() -> None:
    """The canary failed its health checks and was rolled back: the play failed it, the
    others never started; the deploy records the canary back at its version."""
    rollback = {
        "from": ["webmg-demo-app=1.2"],
        "to": ["webmg-demo-app=1.0"],
        "restored": True,
        "error": None,
        "health": {"ok": True, "checks": []},
    }
    canary = _raw(
        "terre-web1",
        "1.0",
        "1.0",
        batch_healthy=False,
        updated_from=["webmg-demo-app=1.0"],
        updated_to=["webmg-demo-app=1.2"],
        health_after={"ok": False, "checks": []},
        rollback=rollback,
        approved={"webmg-demo-app": "1.2"},
    )
    result = _result(
        {"terre-web1": canary},
        {
            "terre-web1": HostStatus.FAILED,
            "terre-web2": HostStatus.UNKNOWN,
            "terre-db1": HostStatus.UNKNOWN,
        },
    )
    outcome = deploy.make_outcome(result, {})
    assert outcome.evidence["halted"]["rolled_back"] is True
    assert outcome.evidence["deployment"]["hosts"]["terre-web1"] == {
        "webmg-demo-app": {"before": "1.0", "after": "1.0"}
    }
    assert {host.host: host.status for host in outcome.hosts} == {
        "terre-web2": HostStatus.EXCLUDED,
        "terre-db1": HostStatus.EXCLUDED,
    }
    assert any("deploy a corrected version" in step for step in outcome.next_steps)
