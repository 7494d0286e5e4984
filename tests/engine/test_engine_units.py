"""Units of the run engine that need no host: events, lock, governance, preflight parsing."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.governance import record_diagnostic

from webmg_ops.ansible.runner import EventCollector
from webmg_ops.config.clients import load_client
from webmg_ops.engine.governance import PolicyRefusal, check_governance, find_open_approval
from webmg_ops.engine.lock import LockHolder, acquire_client_lock
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import open_ledger
from webmg_ops.remote.preflight import HostCheck, _parse_probe
from webmg_ops.runs.records import APPROVAL, RUN_STARTED, HostStatus, Refusal
from webmg_ops.secrets import SecretSet

SECRET = "s3cret-canary-value-0123456789"


def _event(kind: str, **data: object) -> dict[str, object]:
    return {"event": kind, "pid": 4242, "event_data": data}


def test_events_fold_into_host_results_with_masked_messages() -> None:
    pids: list[int] = []
    collector = EventCollector(["web1", "web2", "db1"], SecretSet.of([SECRET]), on_pid=pids.append)
    events = [
        _event("playbook_on_task_start", task="Install"),
        _event("runner_on_ok", host="web1", task="Install", res={"changed": True}, duration=1.5),
        _event("runner_on_ok", host="web2", task="Install", res={"changed": False}),
        _event(
            "runner_on_failed",
            host="db1",
            task="Migrate",
            res={"msg": f"bad password {SECRET}", "rc": 2, "cmd": ["migrate", SECRET]},
        ),
        _event("runner_on_failed", host="web2", task="Probe", ignore_errors=True, res={"msg": "x"}),
        _event(
            "playbook_on_stats",
            ok={"web1": 1, "web2": 2},
            changed={"web1": 1},
            failures={"db1": 1},
            artifact_data={"webmg_evidence": {"web1": {"token": SECRET, "os": "Debian"}}},
        ),
    ]
    for event in events:
        assert collector.handle(event) is False  # never kept on disk by ansible-runner
    results = {result.host: result for result in collector.results()}
    assert pids == [4242]
    assert results["web1"].status is HostStatus.CHANGED
    assert results["web1"].changed_tasks == ("Install",)
    assert results["web2"].status is HostStatus.OK
    assert results["db1"].status is HostStatus.FAILED
    (failure,) = results["db1"].failed_tasks
    assert SECRET not in failure.message
    assert "exit status 2" in failure.message
    assert collector.evidence == {"web1": {"token": "********", "os": "Debian"}}


def test_host_without_stats_is_unknown_and_unreachable_is_recorded() -> None:
    collector = EventCollector(["web1", "web2"], SecretSet())
    collector.handle(_event("runner_on_unreachable", host="web2", res={"msg": "timed out"}))
    results = {result.host: result for result in collector.results()}
    assert results["web1"].status is HostStatus.UNKNOWN
    assert results["web2"].status is HostStatus.UNREACHABLE
    assert results["web2"].note == "timed out"


def _hold_lock_then_die(var_dir: str, ready: multiprocessing.synchronize.Event) -> None:
    acquire_client_lock(Path(var_dir), "alpenhof", LockHolder("run-dead", os.getpid(), "then"))
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_lock_refuses_a_second_holder_and_survives_a_crash(tmp_path: Path) -> None:
    first = acquire_client_lock(tmp_path, "alpenhof", LockHolder("run-1", os.getpid(), "now"))
    with pytest.raises(Refused, match="locked by run run-1"):
        acquire_client_lock(tmp_path, "alpenhof", LockHolder("run-2", 1, "now"))
    first.release()
    ready = multiprocessing.Event()
    crashed = multiprocessing.Process(target=_hold_lock_then_die, args=(str(tmp_path), ready))
    crashed.start()
    crashed.join()
    assert ready.is_set()
    taken = acquire_client_lock(tmp_path, "alpenhof", LockHolder("run-3", os.getpid(), "now"))
    assert taken.stale is not None and taken.stale.run_id == "run-dead"
    taken.release()
    clean = acquire_client_lock(tmp_path, "alpenhof", LockHolder("run-4", os.getpid(), "now"))
    assert clean.stale is None
    clean.release()


def test_governance_window_freeze_emergency(inventories: Path, ledger_url: str) -> None:
    client = load_client(inventories, "alpenhof")
    ledger = open_ledger(ledger_url)
    record_diagnostic(ledger, "alpenhof")
    tuesday_night = datetime(2026, 12, 1, 23, 30, tzinfo=UTC) - timedelta(hours=1)  # 23:30 Vienna
    assert (
        check_governance(
            client,
            "update",
            check=False,
            emergency=False,
            reason="",
            at=tuesday_night,
            ledger=ledger,
        ).window
        == "tuesday night"
    )
    noon = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    with pytest.raises(PolicyRefusal) as refused:
        check_governance(
            client, "update", check=False, emergency=False, reason="", at=noon, ledger=ledger
        )
    assert refused.value.refusal is Refusal.WINDOW
    summer = datetime(2026, 7, 14, 21, 30, tzinfo=UTC)  # a Tuesday night, inside the season
    with pytest.raises(PolicyRefusal) as refused:
        check_governance(
            client, "update", check=False, emergency=False, reason="", at=summer, ledger=ledger
        )
    assert refused.value.refusal is Refusal.FREEZE
    assert "summer season" in refused.value.message
    clearance = check_governance(
        client, "update", check=False, emergency=True, reason="zero-day", at=summer, ledger=ledger
    )
    assert clearance.overridden == "freeze summer season"
    with pytest.raises(BadInput, match="needs --reason"):
        check_governance(
            client, "update", check=False, emergency=True, reason=" ", at=summer, ledger=ledger
        )
    # Read-only actions and dry runs need no window.
    check_governance(
        client, "check", check=False, emergency=False, reason="", at=noon, ledger=ledger
    )
    check_governance(
        client, "update", check=True, emergency=False, reason="", at=noon, ledger=ledger
    )


def test_approvals_are_consumed_once(ledger_url: str) -> None:
    with open_ledger(ledger_url) as ledger:
        first = ledger.append(APPROVAL, "riverton", {"action": "update", "by": "CIO", "note": "ok"})
        ledger.append(APPROVAL, "riverton", {"action": "harden", "by": "CIO", "note": "ok"})
        assert find_open_approval(ledger, "riverton", "update") == first.seq
        ledger.append(RUN_STARTED, "riverton", {"run_id": "r1", "approval_seq": first.seq})
        assert find_open_approval(ledger, "riverton", "update") is None


@pytest.mark.parametrize(
    ("output", "check"),
    [
        ("5000\nno-reboot\napt-free\n", HostCheck.READY),
        ("5000\nreboot-required\napt-free\n", HostCheck.READY),
        ("50\nno-reboot\napt-free\n", HostCheck.LOW_DISK),
        ("5000\nno-reboot\napt-locked\n", HostCheck.APT_LOCKED),
        ("5000\nno-reboot\nsudo-failed\n", HostCheck.NO_SUDO),
    ],
)
def test_preflight_probe_parsing(output: str, check: HostCheck) -> None:
    result = _parse_probe("web1", output, min_free_mb=200)
    assert result.check is check
    assert result.reboot_pending == ("reboot-required" in output)


def test_a_client_may_bring_its_own_ansible_cfg(inventories: Path) -> None:
    from webmg_ops.ansible.runner import ANSIBLE_CFG, ansible_cfg_for

    client = load_client(inventories, "alpenhof")
    assert ansible_cfg_for(client.folder) == ANSIBLE_CFG
    own = inventories / "alpenhof" / "ansible.cfg"
    own.write_text("[defaults]\nforks = 50\n")
    assert ansible_cfg_for(client.folder) == own
