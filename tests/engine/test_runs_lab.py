"""The run engine end to end on rehearsal-lab hosts: real SSH, real Ansible, real ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.argv_record import recording_execs
from support.consoles import widen_consoles
from support.engine import PLAYBOOKS, install_test_action
from support.lab import Lab, edited_contract, edited_file
from support.leak_search import leaks
from support.waiting import wait_until

from webmg_ops.ansible.runner import ANSIBLE_CFG, Job, run_playbook
from webmg_ops.engine.execute import execute_run
from webmg_ops.errors import ExitCode
from webmg_ops.runs.records import HostResult, HostStatus, Outcome, RunRequest
from webmg_ops.secrets import SecretSet

pytestmark = pytest.mark.lab

#: The demo client: lab-only, always-open window, stability-security (partial runs allowed).
CLIENT = "atelier-nord"
CLIENT_HOSTS = {"atelier-web1", "atelier-db1"}
WEB1 = "198.18.0.41"
MARKER = "/var/tmp/webmg-deploy-marker"
#: The file on atelier-web1 that ends tests/playbooks/hold_until_released.yml.
RELEASE = "/var/tmp/webmg-release"


class InProcess:
    """``webmg-ops`` run in this process (so test actions apply), on the lab's files."""

    def __init__(self, lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
        self.lab = lab
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from webmg_ops.cli.main import main

        settings = self.lab.settings
        self.capsys.readouterr()
        try:
            main(
                [
                    "--inventories",
                    str(settings.inventories),
                    "--ledger",
                    settings.ledger_url,
                    *args,
                ]
            )
        except SystemExit as done:
            code = int(done.code or 0)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


@pytest.fixture
def inproc(
    lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> InProcess:
    monkeypatch.setenv("WEBMG_VAR", str(lab.settings.var_dir))
    monkeypatch.setenv("WEBMG_VAULT_PASSWORD_FILE", lab.env["WEBMG_VAULT_PASSWORD_FILE"])
    widen_consoles(monkeypatch, 200)
    return InProcess(lab, capsys)


def _finished(lab: Lab, run_id: str) -> dict:
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    return entry.payload


def _started(lab: Lab, run_id: str) -> dict:
    (entry,) = [e for e in lab.entries("run-started") if e.payload["run_id"] == run_id]
    return entry.payload


def _closed_window(data: dict) -> None:
    # A window that is certainly not open now: three days from today, at night.
    day = (datetime.now(UTC) + timedelta(days=3)).strftime("%a").lower()
    data["windows"] = [{"weekdays": [day], "start": "03:00", "duration": "1h", "timezone": "UTC"}]


def _marker_on(lab: Lab, address: str) -> bool:
    return lab.ssh(address, f"test -e {MARKER}").returncode == 0


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_check_is_recorded_with_evidence_and_run_log(lab: Lab) -> None:
    done = lab.cli("run", CLIENT, "check", "--reason", "monthly look", "--ticket", "T-1", "--json")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "succeeded"
    started = _started(lab, report["run_id"])
    assert started["reason"] == "monthly look"
    assert started["ticket"] == "T-1"
    assert set(started["hosts"]) == CLIENT_HOSTS
    assert started["versions"]["ansible-core"]
    assert started["playbook"] == "playbooks/check.yml"
    finished = _finished(lab, report["run_id"])
    assert {host["host"]: host["status"] for host in finished["hosts"]} == dict.fromkeys(
        CLIENT_HOSTS, "ok"
    )
    web = finished["evidence"]["hosts"]["atelier-web1"]
    assert web["os"].startswith("Debian 12")
    assert any(port["port"] == 80 for port in web["listening_ports"])
    assert web["pending_updates"]["security"] == 1  # the lab serves demo app 1.1 as security
    log = Path(report["run_log"]).read_text()
    for host in CLIENT_HOSTS:
        assert host in log
    assert report["ledger"]["finished"].split(":")[1] in log
    assert lab.cli("ledger", "verify").returncode == 0


def test_lab_enrols_its_hosts_and_enroll_needs_confirmation(lab: Lab) -> None:
    known_hosts = lab.inventories / CLIENT / "known_hosts"
    # Only the lab's own enrolments: other tests enrol and bootstrap these hosts too.
    enrolled = {
        e.payload["host"]: e.payload
        for e in lab.entries("host-enrolled", CLIENT)
        if e.payload.get("enrolled_by") == "rehearsal lab"
    }
    # Named as the inventory names them, as enroll and bootstrap name them, the address beside.
    assert {host: payload["address"] for host, payload in enrolled.items()} == {
        "atelier-web1": "198.18.0.41",
        "atelier-db1": "198.18.0.42",
    }
    # The backup target is enrolled for the agency's own folder, not for a client.
    agency = {
        e.payload["host"]
        for e in lab.entries("host-enrolled", "agency")
        if e.payload.get("enrolled_by") == "rehearsal lab"
    }
    assert agency == {"backup1"}
    done = lab.cli("enroll", CLIENT, "--json")
    assert done.returncode == ExitCode.OK, done.stderr
    results = {item["host"]: item for item in json.loads(done.stdout)}
    assert {item["status"] for item in results.values()} == {"already enrolled"}
    assert results["atelier-web1"]["fingerprint"] == enrolled["atelier-web1"]["fingerprint"]
    original = known_hosts.read_text()
    without_web1 = "".join(
        line for line in original.splitlines(keepends=True) if not line.startswith("198.18.0.41 ")
    )
    with edited_file(known_hosts, without_web1):
        refused = lab.cli("enroll", CLIENT, "atelier-web1")
        assert refused.returncode == ExitCode.REFUSED
        assert "not accepted" in refused.stderr
        before = len(lab.entries("host-enrolled", CLIENT))
        fingerprint = results["atelier-web1"]["fingerprint"]
        accepted = lab.cli("enroll", CLIENT, "atelier-web1", "--accept", fingerprint)
        assert accepted.returncode == ExitCode.OK, accepted.stderr
        assert known_hosts.read_text().count("198.18.0.41 ssh-ed25519") == 1
        assert len(lab.entries("host-enrolled", CLIENT)) == before + 1


def test_outside_window_is_refused_and_emergency_is_recorded(
    lab: Lab, inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_test_action(monkeypatch, "harden", "deploy_marker.yml")
    with lab.resetting("atelier-web1"):
        lab.diagnosed(CLIENT)
        with edited_contract(lab.inventories, CLIENT, _closed_window):
            code, _out, err = inproc("run", CLIENT, "harden", "--limit", "atelier-web1")
            assert code == ExitCode.REFUSED
            assert "outside its maintenance windows" in err
            refused = lab.entries("run-refused", CLIENT)[-1].payload
            assert refused["refusal"] == "window"
            assert not _marker_on(lab, WEB1)

            code, _out, err = inproc(
                "run", CLIENT, "harden", "--limit", "atelier-web1", "--emergency"
            )
            assert code == ExitCode.BAD_INPUT
            assert "--emergency needs --reason" in err

            code, out, err = inproc(
                "run",
                CLIENT,
                "harden",
                "--limit",
                "atelier-web1",
                "--emergency",
                "--reason",
                "fix for an exploited flaw",
                "--json",
            )
            assert code == ExitCode.OK, err
            run_id = json.loads(out)["run_id"]
        started = _started(lab, run_id)
        assert started["emergency"] is True
        assert started["window"] == "outside windows"
        assert started["reason"] == "fix for an exploited flaw"
        assert _marker_on(lab, WEB1)


def test_approval_is_required_and_consumed_once(
    lab: Lab, inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_test_action(monkeypatch, "harden", "deploy_marker.yml")
    lab.diagnosed("riverton")
    with lab.resetting("riverton-web1"):
        run = (
            "run",
            "riverton",
            "harden",
            "--limit",
            "riverton-web1",
            "--emergency",
            "--reason",
            "hotfix CHG-42",
        )
        code, _out, err = inproc(*run)
        assert code == ExitCode.REFUSED
        assert "requires an approval" in err
        code, _out, err = inproc(
            "approve",
            "riverton",
            "harden",
            "--by",
            "Marcus Reed (CIO)",
            "--note",
            "CHG-42 approved",
        )
        assert code == ExitCode.OK, err
        approval = lab.entries("approval", "riverton")[-1]
        code, out, err = inproc(*run, "--json")
        assert code == ExitCode.OK, err
        assert _started(lab, json.loads(out)["run_id"])["approval_seq"] == approval.seq
        code, _out, err = inproc(*run)
        assert code == ExitCode.REFUSED, "an approval is consumed by one run only"


def test_dry_run_needs_no_window_and_changes_nothing(
    lab: Lab, inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_test_action(monkeypatch, "harden", "deploy_marker.yml")
    with edited_contract(lab.inventories, CLIENT, _closed_window):
        code, out, err = inproc(
            "run", CLIENT, "harden", "--check", "--limit", "atelier-web1", "--json"
        )
    assert code == ExitCode.OK, err
    report = json.loads(out)
    assert _started(lab, report["run_id"])["check"] is True
    assert report["hosts"][0]["changed"] == 1  # it would write the marker...
    assert not _marker_on(lab, WEB1)  # ...but did not


def test_second_run_on_a_client_is_refused(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first run holds the client until released: the second certainly meets its lock.
    install_test_action(monkeypatch, "harden", "hold_until_released.yml")
    lab.diagnosed(CLIENT)
    monkeypatch.setenv("WEBMG_VAR", str(lab.settings.var_dir))
    request = RunRequest(
        CLIENT,
        "harden",
        limit="atelier-web1",
        emergency=True,
        reason="holds the client",
        vault_password_file=Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]),
    )
    ended: dict[str, Any] = {}

    def first_run() -> None:
        try:
            ended["report"] = execute_run(lab.settings, request)
        except BaseException as error:
            ended["error"] = error

    first = threading.Thread(target=first_run)
    lock = lab.settings.var_dir / "locks" / f"{CLIENT}.lock"
    first.start()
    try:
        held = wait_until(lambda: lock.exists() and bool(lock.read_text().strip()), 120)
        assert held, "the first run never took the client's lock"
        second = lab.cli("run", CLIENT, "check", "--reason", "second")
        assert first.is_alive(), "the first run ended before the second was tried"
    finally:
        assert lab.ssh(WEB1, f"sudo touch {RELEASE}").returncode == 0
        first.join(timeout=300)
        assert lab.ssh(WEB1, f"sudo rm -f {RELEASE}").returncode == 0
    assert "error" not in ended, ended
    assert ended["report"].outcome is Outcome.SUCCEEDED
    assert second.returncode == ExitCode.REFUSED, second.stderr
    assert f"client {CLIENT} is locked by run" in second.stderr
    assert lab.entries("run-refused", CLIENT)[-1].payload["refusal"] == "lock"


def test_regenerated_host_key_is_refused_before_any_task(lab: Lab) -> None:
    db = "198.18.0.42"
    regenerate = (
        "sudo rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && "
        "sudo ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && "
        "sudo systemctl restart ssh"
    )
    assert lab.ssh(db, regenerate).returncode == 0
    try:
        done = lab.cli("run", CLIENT, "check", "--reason", "after re-install", "--json")
        assert done.returncode == ExitCode.REFUSED, done.stderr
        report = json.loads(done.stdout)
        hosts = {host["host"]: host for host in report["hosts"]}
        assert hosts["atelier-db1"]["status"] == "excluded"
        assert "CHANGED" in hosts["atelier-db1"]["note"]
        assert hosts["atelier-web1"]["status"] == "ok"  # stability-security goes on with the rest
        finished = _finished(lab, report["run_id"])
        assert finished["evidence"]["preflight"]["atelier-db1"]["check"] == "host-key-changed"
        assert finished["hosts"][0]["ok"] == 0  # no task ran on the refused host
    finally:
        lab.reset("atelier-db1")


def _play_on(lab: Lab, host: str, private_dir: Path) -> HostResult:
    """Run the marker playbook on one host with the engine's runner and the client's files."""
    folder = lab.inventories / CLIENT
    own_cfg = folder / "ansible.cfg"
    job = Job(
        run_id=f"trust-{private_dir.name}",
        playbook=PLAYBOOKS / "deploy_marker.yml",
        inventory=folder / "hosts.yml",
        private_dir=private_dir,
        limit=host,
        vault_password_file=Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]),
        ansible_cfg=own_cfg if own_cfg.is_file() else ANSIBLE_CFG,
    )
    (result,) = run_playbook(job, [host], SecretSet.of([])).hosts
    return result


def refused_for_its_key(note: str) -> bool:
    """Return whether a host's note says its host key was refused, in OpenSSH's words or
    in Mitogen's (whichever strategy ran the play)."""
    return any(
        words in note
        for words in (
            "Host key verification failed",
            "SSH reported an unrecognized or mismatching host key",
        )
    )


def test_client_files_cannot_switch_off_host_key_checking(lab: Lab, tmp_path: Path) -> None:
    # The db host is re-installed (new host key); its client's files then try to make
    # Ansible accept it anyway.
    db = "198.18.0.42"
    folder = lab.inventories / CLIENT
    vars_file = folder / "group_vars" / "all" / "main.yml"
    attacker_known_hosts = tmp_path / "attacker_known_hosts"
    weakened = vars_file.read_text() + (
        f"ansible_ssh_private_key_file: {folder / 'ssh' / 'id_ed25519'}\n"
        "ansible_ssh_common_args: >-\n"
        f"  -o StrictHostKeyChecking=no -o UserKnownHostsFile={attacker_known_hosts}\n"
    )
    regenerate = (
        "sudo rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && "
        "sudo ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && "
        "sudo systemctl restart ssh"
    )
    assert lab.ssh(db, regenerate).returncode == 0
    try:
        with (
            edited_file(vars_file, weakened),
            edited_file(folder / "ansible.cfg", "[defaults]\nhost_key_checking = False\n"),
        ):
            # Plain Ansible with these files accepts the new key: the attack is real.
            plain = subprocess.run(
                [
                    str(Path(sys.executable).parent / "ansible"),
                    "-i",
                    str(folder / "hosts.yml"),
                    "atelier-db1",
                    "-m",
                    "ansible.builtin.ping",
                ],
                env={**lab.ansible_env(), "ANSIBLE_CONFIG": str(folder / "ansible.cfg")},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            lab.end_ssh_masters()
            assert plain.returncode == 0, plain.stdout + plain.stderr
            entries = len(lab.entries())
            done = lab.cli("run", CLIENT, "check", "--reason", "re-installed db")
            assert done.returncode == ExitCode.BAD_INPUT, done.stderr
            assert f"{vars_file}:" in done.stderr
            assert "ansible_ssh_common_args: refused" in done.stderr
            assert "ansible_ssh_private_key_file: refused" in done.stderr
            assert f"{folder / 'ansible.cfg'}:2: [defaults] host_key_checking is refused" in (
                done.stderr
            )
            assert len(lab.entries()) == entries  # refused before anything was written
            # Were validation skipped, the engine's settings still come first for OpenSSH.
            forced = _play_on(lab, "atelier-db1", tmp_path / "forced")
            assert forced.status == HostStatus.UNREACHABLE, forced
            # OpenSSH's own words under Ansible's strategy; Mitogen's, over the same ssh.
            assert refused_for_its_key(forced.note), forced.note
        with edited_file(folder / "ansible.cfg", "[defaults]\nforks = 5\n"):
            assert lab.cli("validate", CLIENT).returncode == ExitCode.OK
            # A permitted ansible.cfg: Ansible itself refuses the changed key.
            permitted = _play_on(lab, "atelier-db1", tmp_path / "permitted")
            assert permitted.status == HostStatus.UNREACHABLE, permitted
            assert refused_for_its_key(permitted.note), permitted.note
        assert (forced.ok, forced.changed, permitted.ok, permitted.changed) == (0, 0, 0, 0)
    finally:
        lab.reset("atelier-db1")


def test_unreachable_host_is_recorded_and_fails_the_run(lab: Lab) -> None:
    hosts_file = lab.inventories / CLIENT / "hosts.yml"
    with edited_file(
        hosts_file,
        hosts_file.read_text().replace(
            "    db:\n",
            "        atelier-ghost:\n          ansible_host: 198.18.0.99\n    db:\n",
        ),
    ):
        done = lab.cli("run", CLIENT, "check", "--reason", "ghost", "--json")
    assert done.returncode == ExitCode.FAILED, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "failed"
    hosts = {host["host"]: host["status"] for host in report["hosts"]}
    assert hosts["atelier-ghost"] == "unreachable"
    assert hosts["atelier-web1"] == "ok"


def _wait_for_play(lab: Lab, before: set[Path]) -> Path:
    """Given the run folders there were before, return the new run's, once its play runs."""

    def playing() -> list[Path]:
        pid_files = (lab.settings.var_dir / "runs").glob("*/ansible/ansible.pid")
        return [found.parent.parent for found in pid_files if found.parent.parent not in before]

    assert wait_until(lambda: bool(playing()), 90), "the play did not start"
    return playing()[0]


@pytest.mark.parametrize(
    ("sig", "outcome"), [(signal.SIGKILL, "interrupted"), (signal.SIGTERM, "canceled")]
)
def test_killed_or_stopped_run_is_closed_and_leaves_nothing(
    lab: Lab, sig: signal.Signals, outcome: str
) -> None:
    runs = lab.settings.var_dir / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    orchestrator = subprocess.Popen(
        [sys.executable, "-m", "webmg_ops.cli.main", "run", CLIENT, "check", "--reason", "killed"],
        env=lab.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = _wait_for_play(lab, before)
    orchestrator.send_signal(sig)
    code = orchestrator.wait(timeout=120)
    if sig == signal.SIGTERM:
        assert code == ExitCode.FAILED
    listing = lab.cli("runs", CLIENT, "--json")  # any command reconciles first
    assert listing.returncode == 0, listing.stderr
    row = next(row for row in json.loads(listing.stdout) if row["run_id"] == run_dir.name)
    assert row["outcome"] == outcome
    statuses = {host["status"] for host in _finished(lab, run_dir.name)["hosts"]}
    assert statuses <= {"unknown", "ok"}
    # The run's processes end with it: wait for that, then say which are left, if any.
    wait_until(lambda: _processes_mentioning(str(run_dir)) == [], 30)
    assert _processes_mentioning(str(run_dir)) == []
    # The next run takes the client over; a crash leaves a recorded lock takeover.
    assert lab.cli("run", CLIENT, "check", "--reason", "after").returncode == ExitCode.OK
    if sig == signal.SIGKILL:
        takeover = lab.entries("lock-takeover", CLIENT)[-1].payload
        assert takeover["previous_run_id"] == run_dir.name


def test_canary_secrets_never_leak(
    lab: Lab, inproc: InProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import base64
    import secrets as random

    canaries = {
        name: f"{name}-{random.token_urlsafe(24)}" for name in ("vault", "extra", "environ")
    }
    install_test_action(monkeypatch, "harden", "canary.yml")
    lab.diagnosed(CLIENT)
    # The client's own vault (group_vars/all/vault.yml) uses the lab's vault password.
    password = Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"])
    # Inside the web group's folder: with a folder group_vars/web, Ansible reads no web.yml.
    vault_file = lab.inventories / CLIENT / "group_vars" / "web" / "canary.yml"
    vault_file.write_text(f"canary_vault_token: {canaries['vault']}\n")
    subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(password),
            str(vault_file),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("WEBMG_CANARY_TOKEN", canaries["environ"])
    try:
        with recording_execs(tmp_path) as calls:
            code, out, err = inproc(
                "run",
                CLIENT,
                "harden",
                "--limit",
                "atelier-web1",
                "-vvvv",
                "--reason",
                "canary",
                "-e",
                f"db_password={canaries['extra']}",
                "--vault-password-file",
                str(password),
            )
    finally:
        vault_file.unlink()
    assert code == ExitCode.FAILED, err  # the last task fails, with secrets in its arguments
    # Every program the run started is on record (ansible-playbook, ssh, ...): none got a canary.
    assert [argv for argv in calls if Path(argv[0]).name == "ansible-playbook"], calls
    assert [argv for argv in calls if Path(argv[0]).name == "ssh"], calls
    assert [
        (name, argv)
        for argv in calls
        for name, value in canaries.items()
        if value in " ".join(argv)
    ] == []
    kept = [out.encode(), err.encode()]
    for path in lab.settings.var_dir.rglob("*"):
        if path.is_file() and "lab" not in path.relative_to(lab.settings.var_dir).parts[:1]:
            kept.append(path.read_bytes())
    blob = b"\n".join(kept)
    for name, value in canaries.items():
        for form in (
            value,
            base64.b64encode(value.encode()).decode(),
            json.dumps(value)[1:-1],
        ):
            assert form.encode() not in blob, f"the {name} canary leaked as {form!r}"
    # Every encoded form the playbook printed (hex, base64 at each alignment, URL, case).
    assert leaks(blob.decode(errors="replace"), canaries) == []
    # What the run wrote is private to its owner, whatever the caller's umask.
    open_to_others = [
        f"{path} {path.lstat().st_mode & 0o777:04o}"
        for path in lab.settings.var_dir.rglob("*")
        if "lab" not in path.relative_to(lab.settings.var_dir).parts[:1]
        and not path.is_symlink()
        and path.lstat().st_mode & 0o077
    ]
    assert open_to_others == []
    run_id = lab.entries("run-finished", CLIENT)[-1].payload
    assert run_id["outcome"] == "failed"
    # The play ran to its last task, which failed (no earlier failure, such as an
    # undefined secret, ended it before the secrets were used on the host).
    (failed,) = run_id["hosts"][0]["failed_tasks"]
    assert failed["task"] == "Fail with a secret in the arguments", failed
    assert "********" in failed["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", CLIENT, "frobnicate"), "Invalid value for 'ACTION'"),
        (("run", "no-such-client", "check"), "unknown client 'no-such-client'"),
        (("run", CLIENT, "check", "--limit", "nomatch*"), "matches no host"),
        (("run", CLIENT, "check", "-e", "novalue"), "expected KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_and_records_nothing(
    lab: Lab, args: tuple[str, ...], message: str, inproc: InProcess
) -> None:
    before = len(lab.entries())
    code, _out, err = inproc(*args)
    assert code == ExitCode.BAD_INPUT
    assert message in err
    assert "Traceback" not in err
    assert len(lab.entries()) == before


def test_plan_touches_no_host_and_says_why_it_would_be_refused(
    lab: Lab, inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_test_action(monkeypatch, "harden", "deploy_marker.yml")
    before = len(lab.entries())
    code, out, _err = inproc("plan", "riverton", "harden", "--json")
    assert code == ExitCode.REFUSED
    plan = json.loads(out)
    assert plan["hosts"] == ["riverton-db1", "riverton-web1", "riverton-web2"]
    assert plan["would_be_refused"] is True
    assert plan["policy"]["updates.approval_required"] == "yes"
    assert len(lab.entries()) == before
