"""Units of the update action that need no host: batches, health-check matching, evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.actions import update
from webmg_ops.ansible.inventory import InventoryHost
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import HealthCheck
from webmg_ops.errors import BadInput
from webmg_ops.ledger import open_ledger
from webmg_ops.reports import render_run_log
from webmg_ops.runs.records import (
    RUN_FINISHED,
    RUN_STARTED,
    HostResult,
    HostStatus,
    Outcome,
    RunFinished,
    RunRequest,
    RunStarted,
    to_payload,
)

SECURITY_ORIGIN = "Debian-Security/bookworm-security"
UPDATES_ORIGIN = "Debian/bookworm-updates"


def _host(name: str, address: str) -> InventoryHost:
    return InventoryHost(name=name, address=address, port=22, user="webmg", groups=("web",))


def _check(name: str, url: str) -> HealthCheck:
    return HealthCheck(name=name, url=url)


@pytest.mark.parametrize(
    ("count", "rolling", "percent", "sizes"),
    [
        (4, True, 50, (1, 2, 1)),
        (3, True, 50, (1, 1, 1)),
        (10, True, 25, (1, 2, 2, 2, 2, 1)),
        (2, True, 100, (1, 1)),
        (1, True, 50, (1,)),
        (5, False, 50, (5,)),
        (0, True, 50, ()),
    ],
)
def test_batches_are_a_canary_then_a_share_of_the_hosts(
    count: int, rolling: bool, percent: int, sizes: tuple[int, ...]
) -> None:
    assert update.batch_sizes(count, rolling, percent) == sizes
    hosts = [f"h{index}" for index in range(count)]
    batches = update.split_batches(hosts, sizes)
    assert [host for batch in batches for host in batch] == hosts


#: A fourth host of terre-solidaire, after its database in the inventory's order.
APP_HOST = "    app:\n      hosts:\n        terre-app1:\n          ansible_host: 198.18.0.29\n"


def with_app_host(inventories: Path) -> None:
    """Give terre-solidaire a fourth host, so that its batches show their sizes."""
    hosts = inventories / "terre-solidaire" / "hosts.yml"
    hosts.write_text(hosts.read_text() + APP_HOST)


def test_batches_follow_the_inventory_order_and_the_policy(inventories: Path) -> None:
    with_app_host(inventories)
    terre = load_client(inventories, "terre-solidaire")
    everyone = tuple(host.name for host in terre.hosts)
    assert update.plan_batches(terre, everyone) == (
        ("terre-web1",),
        ("terre-web2", "terre-db1"),
        ("terre-app1",),
    )
    alpenhof = load_client(inventories, "alpenhof")  # stability-security: not rolling
    assert update.plan_batches(alpenhof, ("alpenhof-db1", "alpenhof-web1")) == (
        ("alpenhof-web1", "alpenhof-db1"),
    )


def test_a_contract_may_only_shrink_the_batches(
    inventories: Path, edit_contract: Callable[[str, Callable[[dict], None]], Path]
) -> None:
    with_app_host(inventories)
    edit_contract(
        "terre-solidaire", lambda data: data.setdefault("updates", {}).update({"batch_percent": 25})
    )
    terre = load_client(inventories, "terre-solidaire")
    assert update.plan_batches(terre, tuple(host.name for host in terre.hosts)) == (
        ("terre-web1",),
        ("terre-web2",),
        ("terre-db1",),
        ("terre-app1",),
    )
    edit_contract("terre-solidaire", lambda data: data["updates"].update({"batch_percent": 75}))
    with pytest.raises(BadInput, match="looser"):
        load_client(inventories, "terre-solidaire")


def test_health_checks_gate_the_hosts_their_url_names() -> None:
    client_hosts = [
        _host("web1", "198.18.0.21"),
        _host("web2", "198.18.0.22"),
        _host("db1", "198.18.0.23"),
    ]
    node1 = _check("node 1", "http://198.18.0.21/health")
    node2 = _check("node 2", "http://198.18.0.22:8080/health")
    by_name = _check("by name", "https://WEB2/status")
    public = _check("public site", "https://www.example.org/")
    gated = update.match_health_checks(
        [node1, node2, by_name, public], client_hosts, ["web1", "web2", "db1"]
    )
    assert {host: [check["name"] for check in checks] for host, checks in gated.items()} == {
        "web1": ["node 1", "public site"],
        "web2": ["node 2", "by name", "public site"],
        "db1": ["public site"],
    }
    assert gated["web1"][0] == {
        "name": "node 1",
        "url": "http://198.18.0.21/health",
        "expect_status": 200,
        "max_latency_ms": 2000,
    }
    # A check of a client host outside the run gates nothing; service-wide ones still gate.
    only_web2 = update.match_health_checks([node1, public], client_hosts, ["web2"])
    assert {host: [c["name"] for c in checks] for host, checks in only_web2.items()} == {
        "web2": ["public site"]
    }


def test_approved_versions_must_be_quoted_versions(tmp_path: Path) -> None:
    file = tmp_path / "approved-versions.yml"
    file.write_text('webmg-demo-app: "1.1"\nopenssl: "3.0.15-1~deb12u1"\n')
    assert update.read_approved_versions(file) == {
        "webmg-demo-app": "1.1",
        "openssl": "3.0.15-1~deb12u1",
    }
    file.write_text("webmg-demo-app: 1.10\n")
    with pytest.raises(BadInput, match="quoted versions"):
        update.read_approved_versions(file)
    file.write_text("- webmg-demo-app\n")
    with pytest.raises(BadInput, match="quoted versions"):
        update.read_approved_versions(file)
    file.write_text("")
    assert update.read_approved_versions(file) == {}


def test_a_run_may_only_make_the_mode_stricter() -> None:
    assert update.effective_mode("security", None) == "security"
    assert update.effective_mode("security", "approved") == "approved"
    assert update.effective_mode("all", "security") == "security"
    with pytest.raises(BadInput, match="looser"):
        update.effective_mode("security", "all")
    with pytest.raises(BadInput, match="not one of"):
        update.effective_mode("all", "everything")


def test_extra_vars_come_from_contract_and_policy(inventories: Path) -> None:
    riverton = load_client(inventories, "riverton")
    hosts = ("riverton-web1", "riverton-web2", "riverton-db1")
    request = RunRequest(client="riverton", action="update")
    extra = update.make_extra_vars(riverton, hosts, request)
    assert extra["updates_mode"] == "approved"
    assert extra["updates_holds"] == ["postgresql-15"]
    assert extra["updates_approved_versions"] == {"webmg-demo-app": "1.1"}
    assert extra["updates_serial"] == [1, 1, 1]
    assert [c["name"] for c in extra["updates_health_checks_by_host"]["riverton-web2"]] == [
        "citizen portal (node 2)"
    ]
    assert extra["updates_health_checks_by_host"]["riverton-db1"] == []
    dry_run = update.make_extra_vars(riverton, hosts, RunRequest("riverton", "update", check=True))
    assert dry_run["updates_serial"] == [3]

    with pytest.raises(BadInput, match="cannot set them"):
        update.make_extra_vars(
            riverton, hosts, RunRequest("riverton", "update", extra_vars={"updates_holds": "[]"})
        )
    with pytest.raises(BadInput, match="looser"):
        update.make_extra_vars(
            riverton, hosts, RunRequest("riverton", "update", extra_vars={"updates_mode": "all"})
        )
    alpenhof = load_client(inventories, "alpenhof")
    with pytest.raises(BadInput, match="approved_versions_file"):
        update.make_extra_vars(
            alpenhof,
            ("alpenhof-web1",),
            RunRequest("alpenhof", "update", extra_vars={"updates_mode": "approved"}),
        )


def test_plan_shows_the_batches(cli: Callable[..., Any], inventories: Path) -> None:
    with_app_host(inventories)
    done = cli("plan", "terre-solidaire", "update", "--json")
    plan = json.loads(done.out)
    assert plan["batches"] == [["terre-web1"], ["terre-web2", "terre-db1"], ["terre-app1"]]
    assert plan["policy"]["updates.rolling"] == "yes"


def test_version_changes_pair_old_and_new_versions() -> None:
    changes = update.version_changes(
        ["webmg-demo-app=1.0", "libfoo=2.0", "gone=1"],
        ["webmg-demo-app=1.1", "libfoo=2.1", "fresh=3"],
        [{"name": "webmg-demo-app", "old": "1.0", "new": "1.1", "origin": SECURITY_ORIGIN}],
    )
    assert changes == [
        {"name": "fresh", "old": None, "new": "3", "origin": "dependency"},
        {"name": "gone", "old": "1", "new": None, "origin": "dependency"},
        {"name": "libfoo", "old": "2.0", "new": "2.1", "origin": "dependency"},
        {"name": "webmg-demo-app", "old": "1.0", "new": "1.1", "origin": SECURITY_ORIGIN},
    ]
    assert update.version_changes([], []) == []
    assert update.parse_versions(["a=1:2.0-1~deb12u1"]) == {"a": "1:2.0-1~deb12u1"}


def test_services_restarted_are_those_with_a_new_invocation() -> None:
    before = {"app.service": "aaa", "ssh.service": "bbb", "old.service": "ccc"}
    after = {"app.service": "ddd", "ssh.service": "bbb", "new.service": "eee"}
    assert update.services_restarted(before, after) == ["app.service"]


def _health(ok: bool, status: int, latency: int = 12) -> dict[str, Any]:
    return {
        "ok": ok,
        "checks": [
            {
                "name": "node 1",
                "url": "http://198.18.0.21/health",
                "status": status,
                "latency_ms": latency,
                "max_latency_ms": 1000,
                "ok": ok,
                "error": "" if ok else f"status {status}, expected 200",
            }
        ],
        "services_stopped": [],
        "services_inactive": [],
    }


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "mode": "all",
        "check": False,
        "at": "2026-05-05T21:15:00.000001Z",
        "batch": ["web1"],
        "batch_ready": True,
        "batch_healthy": True,
        "plan": [{"name": "webmg-demo-app", "old": "1.0", "new": "1.2", "origin": UPDATES_ORIGIN}],
        "held": [],
        "not_applicable": [],
        "install_error": None,
        "updated_from": ["webmg-demo-app=1.0"],
        "updated_to": ["webmg-demo-app=1.2"],
        "services_before": {"webmg-demo-app.service": "a"},
        "services_after": {"webmg-demo-app.service": "b"},
        "reboot_required": False,
        "reboot_packages": [],
        "health_before": _health(True, 200),
        "health_after": _health(True, 200),
        "rollback": None,
    }
    raw.update(changes)
    return raw


def _result(evidence: dict[str, Any], statuses: dict[str, HostStatus]) -> PlaybookResult:
    return PlaybookResult(
        status="failed" if HostStatus.FAILED in statuses.values() else "successful",
        rc=2 if HostStatus.FAILED in statuses.values() else 0,
        hosts=tuple(HostResult(host=host, status=status) for host, status in statuses.items()),
        evidence=evidence,
        canceled=False,
        duration_s=12.0,
    )


def _halted_result() -> PlaybookResult:
    rollback = {
        "from": ["webmg-demo-app=1.2"],
        "to": ["webmg-demo-app=1.0"],
        "restored": True,
        "error": None,
        "health": _health(True, 200, 9),
    }
    web1 = _raw(batch_healthy=False, health_after=_health(False, 500), rollback=rollback)
    return _result(
        {"web1": web1},
        {"web1": HostStatus.FAILED, "web2": HostStatus.UNKNOWN, "db1": HostStatus.UNKNOWN},
    )


def test_a_halted_window_records_the_rollback_and_the_hosts_not_started() -> None:
    outcome = update.make_outcome(_halted_result(), {})
    evidence = outcome.evidence
    assert evidence["batches"] == [["web1"]]
    assert evidence["halted"] == {
        "batch": 1,
        "hosts": ["web1"],
        "when": "after the update",
        "reason": "web1: node 1: status 500, expected 200",
        "rolled_back": True,
        "health_restored": True,
    }
    assert evidence["not_started"] == ["web2", "db1"]
    web1 = evidence["hosts"]["web1"]
    assert web1["outcome"] == "rolled back"
    assert web1["packages"] == [
        {"name": "webmg-demo-app", "old": "1.0", "new": "1.2", "origin": UPDATES_ORIGIN}
    ]
    assert web1["rollback"]["packages"] == [{"name": "webmg-demo-app", "from": "1.2", "to": "1.0"}]
    assert web1["services_restarted"] == ["webmg-demo-app.service"]
    assert {host.host: host.status for host in outcome.hosts} == {
        "web2": HostStatus.EXCLUDED,
        "db1": HostStatus.EXCLUDED,
    }
    assert "halted after batch 1" in outcome.hosts[0].note
    assert {risk.host for risk in outcome.residual_risks} == {"web2", "db1"}
    assert "halted at batch 1 (web1)" in outcome.summary
    assert "rolled back, health restored" in outcome.summary
    assert any("batch 1 (web1)" in step for step in outcome.next_steps)


def test_a_failed_rollback_and_a_pending_reboot_are_risks() -> None:
    rollback = {
        "from": [],
        "to": [],
        "restored": False,
        "error": "E: version 1.0 not found",
        "health": _health(False, 500),
    }
    raw = _raw(
        batch_healthy=False,
        health_after=_health(False, 500),
        rollback=rollback,
        reboot_required=True,
        reboot_packages=["linux-image-amd64"],
        held=[{"name": "postgresql-15", "old": "15.1", "new": "15.2", "origin": SECURITY_ORIGIN}],
    )
    outcome = update.make_outcome(_result({"web1": raw}, {"web1": HostStatus.FAILED}), {})
    risks = {risk.risk: risk for risk in outcome.residual_risks}
    assert (
        "E: version 1.0 not found"
        in risks["the rollback did not bring the host back to health"].reason
    )
    assert "linux-image-amd64" in risks["a reboot is required to finish the update"].reason
    assert "postgresql-15 15.2" in risks["1 held update(s) not installed"].reason
    assert outcome.evidence["halted"]["health_restored"] is False
    assert outcome.next_steps[0].startswith("Restore the service now")
    assert "health NOT restored" in outcome.summary


def test_a_dry_run_reports_what_would_change() -> None:
    raw = _raw(check=True, updated_from=[], updated_to=[], services_after={}, services_before={})
    outcome = update.make_outcome(_result({"web1": raw}, {"web1": HostStatus.CHANGED}), {})
    web1 = outcome.evidence["hosts"]["web1"]
    assert web1["outcome"] == "would update"
    assert web1["planned"][0]["new"] == "1.2"
    assert web1["packages"] == []
    assert outcome.evidence["halted"] is None
    assert outcome.evidence["batches"] == []
    assert outcome.summary == "dry run: 1 package update(s) would be installed on 1 of 1 host(s)"
    assert outcome.residual_risks == ()


def test_run_log_shows_versions_health_and_rollback_per_host(
    tmp_path: Path, inventories: Path
) -> None:
    contract = load_client(inventories, "terre-solidaire").contract
    outcome = update.make_outcome(_halted_result(), {})
    run_id = "20260505T211500Z-terre-solidaire-update-a1b2c3"
    started = RunStarted(
        run_id=run_id,
        action="update",
        check=False,
        emergency=False,
        reason="monthly updates",
        ticket=None,
        window="saturday morning",
        hosts=("web1", "web2", "db1"),
        limit=None,
        playbook="playbooks/update.yml",
        revision="abc",
        versions={},
        pid=1,
        pid_start=1,
        controller="ops",
    )
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        start = ledger.append(RUN_STARTED, "terre-solidaire", to_payload(started))
        finish = ledger.append(
            RUN_FINISHED,
            "terre-solidaire",
            to_payload(
                RunFinished(
                    run_id=run_id,
                    action="update",
                    check=False,
                    outcome=Outcome.FAILED,
                    started_seq=start.seq,
                    duration_s=30.0,
                    hosts=(HostResult("web1", HostStatus.FAILED), *outcome.hosts),
                    evidence=outcome.evidence,
                    residual_risks=outcome.residual_risks,
                    summary=outcome.summary,
                )
            ),
        )
    files = render_run_log(start, finish, contract, tmp_path)
    markdown = files.markdown.read_text()
    html = files.html.read_text()
    assert "| webmg-demo-app | 1.0 | 1.2 | Debian/bookworm-updates |" in markdown
    assert "| node 1 | 200 in 12 ms | 500 in 12 ms (failed) | 200 in 9 ms |" in markdown
    assert "| webmg-demo-app | 1.2 | 1.0 |" in markdown
    assert "Window halted:** batch 1 (web1)" in markdown
    assert "Not started: web2, db1" in markdown
    assert "<td>webmg-demo-app</td><td>1.0</td><td>1.2</td>" in html
    assert "500 in 12 ms (failed)" in html


def test_a_batch_unhealthy_before_the_update_is_not_updated_and_halts() -> None:
    raw = _raw(
        batch_ready=False,
        updated_from=[],
        updated_to=[],
        health_before=_health(False, 503),
        health_after=_health(False, 503),
    )
    result = _result({"web1": raw}, {"web1": HostStatus.FAILED, "web2": HostStatus.UNKNOWN})
    outcome = update.make_outcome(result, {})
    assert (
        outcome.evidence["hosts"]["web1"]["outcome"] == "not updated: unhealthy before the update"
    )
    assert outcome.evidence["halted"] == {
        "batch": 1,
        "hosts": ["web1"],
        "when": "before the update",
        "reason": "web1: node 1: status 503, expected 200",
        "rolled_back": False,
        "health_restored": None,
    }
    assert "nothing changed on it" in outcome.summary
    assert [host.host for host in outcome.hosts] == ["web2"]
