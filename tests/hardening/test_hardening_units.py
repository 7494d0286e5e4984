"""The control catalogue, the checks' verdicts and the score, without hosts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from webmg_ops.actions.harden import find_drift, make_extra_vars
from webmg_ops.errors import BadInput
from webmg_ops.hardening.compliance import (
    CHECKS,
    ControlResult,
    HostCompliance,
    evaluate_host,
    percent,
    score,
    to_document,
)
from webmg_ops.hardening.controls import (
    CONTROLS,
    ControlStatus,
    find_control,
    root_login_allowed,
    root_login_setting,
)


def test_every_control_has_an_id_title_rationale_reference_remediation_and_check() -> None:
    ids = [control.id for control in CONTROLS]
    assert len(ids) == len(set(ids))
    for control in CONTROLS:
        assert control.title and control.rationale and control.reference
        assert control.remediation.startswith("hardening_")
        assert control.kind in CHECKS


def test_remediation_tags_exist_in_the_role() -> None:
    from pathlib import Path

    role = (Path(__file__).parents[2] / "roles/hardening/tasks/main.yml").read_text()
    for control in CONTROLS:
        assert control.remediation in role, control.id


def test_unknown_control_is_bad_input() -> None:
    assert find_control("SSH-01").title
    with pytest.raises(BadInput):
        find_control("NOPE-1")


def test_root_login_follows_the_level() -> None:
    assert root_login_allowed("institutional-sla") == ("no",)
    assert root_login_setting("institutional-sla") == "no"
    assert root_login_setting("stability-security") == "prohibit-password"


def _host(statuses: Mapping[str, ControlStatus]) -> HostCompliance:
    return HostCompliance("h", tuple(ControlResult(c, s, "") for c, s in statuses.items()))


def test_score_counts_passed_over_applicable() -> None:
    host = _host(
        {
            "A": ControlStatus.PASS,
            "B": ControlStatus.FAIL,
            "C": ControlStatus.NOT_APPLICABLE,
            "D": ControlStatus.RESIDUAL_RISK,
        }
    )
    assert (host.passed, host.applicable) == (1, 3)
    assert score([host, host]) == (2, 6)
    assert percent(1, 3) == 33.3
    assert percent(0, 0) == 100.0
    document = to_document("c", [host])
    assert document["hosts"]["h"]["failed"] == ["B"]
    assert document["hosts"]["h"]["residual_risk"] == ["D"]


def test_a_host_that_cannot_be_reached_is_not_scored() -> None:
    def probe(command: str) -> tuple[int, str]:
        raise OSError("ssh: connect to host 198.18.0.99 port 22: No route to host")

    host = evaluate_host("gone", probe, "stability-security")
    assert host.error and "No route" in host.error
    assert score([host]) == (0, 0)


HARDENED_SSHD = """passwordauthentication no
kbdinteractiveauthentication no
permitemptypasswords no
permitrootlogin without-password
ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
kexalgorithms curve25519-sha256
macs hmac-sha2-512-etm@openssh.com
maxauthtries 3
logingracetime 30
clientaliveinterval 300
x11forwarding no
allowagentforwarding no
allowtcpforwarding no
banner /etc/issue.net
loglevel VERBOSE
compression no
maxsessions 10
tcpkeepalive no
clientalivecountmax 2
disableforwarding yes
permituserenvironment no
hostbasedauthentication no
ignorerhosts yes
maxstartups 10:30:60
usepam yes
gssapiauthentication no
"""


def _probe(outputs: Mapping[str, tuple[int, str]]):  # type: ignore[no-untyped-def]
    def probe(command: str) -> tuple[int, str]:
        for prefix, answer in outputs.items():
            if command.startswith(prefix):
                return answer
        return 1, ""

    return probe


def _ssh_results(sshd: str, level: str) -> dict[str, ControlStatus]:
    controls = [control for control in CONTROLS if control.kind == "sshd"]
    host = evaluate_host(
        "h", _probe({"true": (0, ""), "/usr/sbin/sshd": (0, sshd)}), level, controls
    )
    return {result.control: result.status for result in host.results}


def test_ssh_checks_pass_a_hardened_server_and_fail_passwords_and_weak_ciphers() -> None:
    assert set(_ssh_results(HARDENED_SSHD, "stability-security").values()) == {ControlStatus.PASS}
    weak = HARDENED_SSHD.replace("passwordauthentication no", "passwordauthentication yes")
    weak = weak.replace("ciphers chacha20", "ciphers 3des-cbc,chacha20")
    failed = [c for c, s in _ssh_results(weak, "stability-security").items() if s != "pass"]
    assert failed == ["SSH-01", "SSH-05"]


def test_root_login_by_key_fails_on_institutional_sla() -> None:
    assert _ssh_results(HARDENED_SSHD, "institutional-sla")["SSH-04"] is ControlStatus.FAIL


def _sysctl(state: Mapping[str, dict[str, object]]) -> dict[str, ControlStatus]:
    controls = [find_control("KRN-02"), find_control("NET-05")]
    probe = _probe({"true": (0, ""), "/usr/bin/python3": (0, json.dumps(state))})
    host = evaluate_host("h", probe, "stability-security", controls)
    return {result.control: result.status for result in host.results}


def test_a_read_only_setting_that_is_persisted_is_a_residual_risk_not_a_failure() -> None:
    state = {
        "kernel.kptr_restrict": {"value": "0", "writable": False, "persisted": "2"},
        "net.ipv4.tcp_syncookies": {"value": "1", "writable": True, "persisted": "1"},
    }
    assert _sysctl(state) == {"KRN-02": "residual-risk", "NET-05": "pass"}
    state["kernel.kptr_restrict"]["persisted"] = None
    state["net.ipv4.tcp_syncookies"]["value"] = "0"
    assert _sysctl(state) == {"KRN-02": "fail", "NET-05": "fail"}


def test_drift_is_a_control_that_passed_after_the_last_hardening_and_fails_now() -> None:
    baseline = {"web1": {"SSH-01": "pass", "FW-01": "fail"}, "web2": {"SSH-01": "pass"}}
    now = {"web1": {"SSH-01": "fail", "FW-01": "fail"}, "web2": {"SSH-01": "pass"}}
    assert find_drift(baseline, now) == {"web1": ["SSH-01"]}
    assert find_drift({}, now) == {}


def test_extra_vars_set_root_login_from_the_level_and_split_networks() -> None:
    from types import SimpleNamespace

    from webmg_ops.config.contract import Level
    from webmg_ops.runs.records import RunRequest

    lab_host = SimpleNamespace(name="h", address="198.18.0.9", groups=("web",))
    client = SimpleNamespace(
        policy=SimpleNamespace(level=Level.INSTITUTIONAL_SLA), hosts=(lab_host,)
    )
    request = RunRequest(
        client="x",
        action="harden",
        extra_vars={"hardening_management_networks": "198.18.0.0/25, 198.18.0.128/25"},
    )
    extra = make_extra_vars(client, ("h",), request)  # type: ignore[arg-type]
    assert extra["hardening_ssh_permit_root_login"] == "no"
    assert extra["hardening_management_networks"] == ["198.18.0.0/25", "198.18.0.128/25"]


def _outcome(  # type: ignore[no-untyped-def]
    check: bool, baseline: Mapping[str, Mapping[str, str]], *, per_control: bool = False
):
    from pathlib import Path
    from types import SimpleNamespace

    from webmg_ops.actions.harden import Before, make_outcome
    from webmg_ops.ansible.runner import PlaybookResult

    statuses = {
        "SSH-01": ControlStatus.FAIL,
        "FW-01": ControlStatus.PASS,
        "KRN-02": ControlStatus.RESIDUAL_RISK,
    }
    host = HostCompliance("web1", tuple(ControlResult(c, s, "why") for c, s in statuses.items()))
    before = Before(
        client=SimpleNamespace(name="c"),  # type: ignore[arg-type]
        hosts=("web1",),
        check=check,
        ansible_cfg=Path("ansible.cfg"),
        compliance=(host,),
        baseline=baseline,
        per_control=per_control,
    )
    result = PlaybookResult(
        status="successful",
        rc=0,
        hosts=(),
        evidence={"web1": {"check": check, "changed_areas": ["ssh"]}},
        canceled=False,
        duration_s=1.0,
    )
    return make_outcome(result, {}, before)


def test_drift_check_reports_drifted_controls_and_what_it_would_fix() -> None:
    outcome = _outcome(True, {"web1": {"SSH-01": "pass", "FW-01": "pass"}})
    assert outcome.evidence["drift"] == {"web1": ["SSH-01"]}
    assert outcome.evidence["hosts"]["web1"]["would_fix"] == ["SSH-01"]
    assert outcome.evidence["score_before"] == {"passed": 1, "applicable": 3, "percent": 33.3}
    risks = [risk.risk for risk in outcome.residual_risks]
    assert "drift: SSH-01 SSH password authentication disabled" in risks
    assert any(risk.startswith("KRN-02") for risk in risks)


def test_harden_run_log_shows_the_before_after_table(tmp_path: Any) -> None:
    from support.run_entries import finished_entry, started_entry

    from webmg_ops.config.clients import load_client
    from webmg_ops.reports import render_run_log
    from webmg_ops.runs.records import Outcome

    contract = load_client(Path(__file__).parents[2] / "inventories", "alpenhof").contract
    outcome = _outcome(True, {"web1": {"SSH-01": "pass"}})
    evidence = json.loads(json.dumps(outcome.evidence, default=str))
    started = started_entry("harden", check=True)
    finished = finished_entry(started, Outcome.SUCCEEDED, evidence, check=True)
    files = render_run_log(started, finished, contract, tmp_path)
    markdown, html = files.markdown.read_text(), files.html.read_text()
    assert "| web1 | 1/3 (33.3 %) | (dry run) | \u2013 | SSH-01 | KRN-02 | SSH-01 |" in markdown
    assert "Drift since the last hardening" in markdown and "Drift since the last hardening" in html


@pytest.mark.parametrize("per_control", [True, False])
def test_the_run_log_shows_every_controls_evidence_where_the_policy_asks_for_it(
    tmp_path: Any, per_control: bool
) -> None:
    from support.run_entries import finished_entry, started_entry

    from webmg_ops.config.clients import load_client
    from webmg_ops.reports import render_run_log
    from webmg_ops.runs.records import Outcome

    contract = load_client(Path(__file__).parents[2] / "inventories", "alpenhof").contract
    outcome = _outcome(True, {}, per_control=per_control)
    evidence = json.loads(json.dumps(outcome.evidence, default=str))
    started = started_entry("harden", check=True)
    finished = finished_entry(started, Outcome.SUCCEEDED, evidence, check=True)
    files = render_run_log(started, finished, contract, tmp_path)
    markdown, html = files.markdown.read_text(), files.html.read_text()
    # Every control measured on web1, with its title, status and evidence ("why").
    rows = [
        "| FW-01 | Firewall drops unsolicited inbound traffic | pass | why |",
        "| KRN-02 | Kernel pointers hidden | residual-risk | why |",
        "| SSH-01 | SSH password authentication disabled | fail | why |",
    ]
    shown = [row for row in rows if row in markdown]
    assert shown == (rows if per_control else [])
    assert ("Evidence per control: web1" in html) is per_control
