"""The lab's hosts: reachable over real SSH with strict host key checking, serving their roles."""

from __future__ import annotations

import configparser
import json
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.lab import Lab

from webmg_ops.ansible.connection import ansible_trust_environment
from webmg_ops.ansible.runner import ANSIBLE_CFG
from webmg_ops.lab.keys import known_hosts_line

pytestmark = pytest.mark.lab

#: Units allowed to have failed on a fresh lab host ("degraded" with only these is fine).
EXPECTED_FAILED_UNITS: frozenset[str] = frozenset()
DEMO_BOOKINGS = 120
DEMO_DB_BOOKINGS = 250


def _hosts(lab: Lab, role: str | None = None) -> list[dict[str, object]]:
    return [host for host in lab.status()["hosts"] if role is None or host["role"] == role]


def test_every_inventory_host_is_up_once(lab: Lab) -> None:
    hosts = _hosts(lab)
    names = [host["name"] for host in hosts]
    assert len(names) == len(set(names))
    assert "backup1" in names
    assert all(host["up"] for host in hosts), hosts
    assert {host["role"] for host in hosts} == {"web", "db", "plain"}


def test_every_host_answers_ssh_with_strict_host_key_checking(lab: Lab) -> None:
    for host in _hosts(lab):
        done = lab.ssh(str(host["address"]), "hostname; systemctl is-system-running --wait")
        lines = done.stdout.split()
        assert lines[:1] == [host["name"]], done
        state = lines[1] if len(lines) > 1 else ""
        if state == "degraded":
            failed = lab.ssh(str(host["address"]), "systemctl --failed --plain --no-legend")
            units = {line.split()[0] for line in failed.stdout.splitlines() if line.strip()}
            assert units <= EXPECTED_FAILED_UNITS, (host["name"], units)
        else:
            assert state == "running", (host["name"], done)


def test_maintenance_account_has_passwordless_sudo_and_root_logs_in_by_key(lab: Lab) -> None:
    address = str(_hosts(lab, "plain")[0]["address"])
    assert lab.ssh(address, "sudo -n id -u").stdout.strip() == "0"
    assert lab.ssh(address, "id -u", user="root").stdout.strip() == "0"


def test_an_unknown_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    host = _hosts(lab, "plain")[0]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    done = subprocess.run(
        [
            "ssh",
            "-i",
            str(lab.lab_dir / "identity" / "id_ed25519"),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={empty}",
            f"webmg@{host['address']}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 255
    assert "Host key verification failed" in done.stderr


def test_web_hosts_serve_the_demo_app_1_0(lab: Lab) -> None:
    for host in _hosts(lab, "web"):
        with urllib.request.urlopen(f"http://{host['address']}/health", timeout=10) as response:
            assert json.load(response) == {"status": "ok", "version": "1.0"}
        with urllib.request.urlopen(f"http://{host['address']}/records", timeout=10) as response:
            assert json.load(response)["count"] == DEMO_BOOKINGS


def test_db_hosts_hold_the_seeded_demo_database(lab: Lab) -> None:
    for host in _hosts(lab, "db"):
        done = lab.ssh(
            str(host["address"]),
            "sudo -u postgres psql -d demo -tAc 'SELECT count(*) FROM bookings'",
        )
        assert done.stdout.strip() == str(DEMO_DB_BOOKINGS), done


def test_apt_sees_each_demo_version_in_its_suite(lab: Lab) -> None:
    address = str(_hosts(lab, "web")[0]["address"])
    done = lab.ssh(address, "sudo apt-get update -q >/dev/null && apt-cache policy webmg-demo-app")
    policy = done.stdout
    assert "Installed: 1.0" in policy, done
    table = policy.split("Version table:")[1]
    rows = [line.strip() for line in table.splitlines() if line.strip()]
    suite_of = {
        rows[index].split()[-2]: rows[index + 1]
        for index in range(len(rows) - 1)
        if rows[index][:3] in ("1.0", "1.1", "1.2", "***")
    }
    assert "bookworm-security/main" in suite_of["1.1"]
    assert "bookworm-updates/main" in suite_of["1.2"]
    assert " bookworm/main" in suite_of["1.0"]


def test_each_lab_client_gets_the_key_and_its_hosts_known_hosts(lab: Lab) -> None:
    status = lab.status()
    by_address = {host["address"]: host for host in status["hosts"]}
    lab_key = Path(status["ssh_key"]).read_bytes()
    for client in sorted(path for path in lab.inventories.iterdir() if path.is_dir()):
        key = client / "ssh" / "id_ed25519"
        assert key.read_bytes() == lab_key
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        lines = (client / "known_hosts").read_text().splitlines()
        assert lines
        for line in lines:
            address = line.split()[0]
            host_key = (
                lab.lab_dir / "identity" / "hosts" / by_address[address]["name"]
            ) / "ssh_host_ed25519_key.pub"
            assert line == known_hosts_line(address, 22, host_key.read_text())


def test_up_again_keeps_running_hosts(lab: Lab) -> None:
    before = lab.host("backup1")
    done = lab.cli("lab", "up", "--hosts", "backup1")
    assert done.returncode == 0, done.stderr
    after = lab.host("backup1")
    assert (after["pid"], after["boots"]) == (before["pid"], before["boots"])


def test_reset_restores_a_bare_host_with_the_same_host_key(lab: Lab) -> None:
    host = _hosts(lab, "web")[-1]
    address = str(host["address"])
    key_before = lab.ssh(address, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout
    assert lab.ssh(address, "sudo touch /etc/changed-by-test").returncode == 0
    lab.reset(str(host["name"]))
    assert lab.ssh(address, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout == key_before
    assert lab.ssh(address, "test -e /etc/changed-by-test").returncode == 1
    with urllib.request.urlopen(f"http://{address}/health", timeout=10) as response:
        assert json.load(response)["version"] == "1.0"


def test_ansible_reboot_module_sees_the_host_come_back(lab: Lab) -> None:
    host = lab.host("backup1")
    client = next(
        path for path in sorted(lab.inventories.iterdir()) if (path / "hosts.yml").is_file()
    )
    boot_id = lab.ssh(str(host["address"]), "cat /proc/sys/kernel/random/boot_id").stdout
    ansible = Path(sys.executable).parent / "ansible"
    done = subprocess.run(
        [
            str(ansible),
            "-i",
            str(client / "hosts.yml"),
            "backup1",
            "-b",
            "-m",
            "ansible.builtin.reboot",
        ],
        env={**lab.ansible_env(), **ansible_trust_environment(client, ANSIBLE_CFG)},
        cwd=lab.root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lab.end_ssh_masters()
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"rebooted": true' in done.stdout
    after = lab.host("backup1")
    assert after["up"] and after["boots"] == host["boots"] + 1
    assert lab.ssh(str(host["address"]), "cat /proc/sys/kernel/random/boot_id").stdout != boot_id


def test_boto3_round_trips_an_object_on_the_s3_endpoint(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    status = lab.status()
    assert status["s3_up"]
    credentials = Path(status["s3_credentials_file"])
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    # Keys in the environment beat the file: this test reads the lab's file alone.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # A session of its own: boto3's default session keeps the credentials it first found,
    # which another test of this process may have set.
    session = boto3.session.Session()
    client = session.client("s3", endpoint_url=status["s3_endpoint"], region_name="us-east-1")
    client.create_bucket(Bucket="lab-test")
    client.put_object(Bucket="lab-test", Key="drill/evidence.txt", Body=b"restored")
    body = client.get_object(Bucket="lab-test", Key="drill/evidence.txt")["Body"].read()
    assert body == b"restored"
    assert (lab.lab_dir / "s3" / "lab-test" / "drill" / "evidence.txt").read_bytes() == b"restored"
    parser = configparser.ConfigParser()
    parser.read(credentials)
    assert parser["default"]["aws_secret_access_key"] not in json.dumps(status)


def test_unknown_host_is_bad_input(lab: Lab) -> None:
    assert lab.cli("lab", "reset", "NO-SUCH-HOST").returncode == 2
    assert lab.cli("lab", "ssh", "NO-SUCH-HOST", "--", "true").returncode == 2


def test_lab_ssh_runs_a_command_and_returns_its_status(lab: Lab) -> None:
    done = lab.cli("lab", "ssh", "backup1", "--", "sh", "-c", "exit 7")
    assert done.returncode == 7, done.stderr


def test_a_second_lab_folder_cannot_take_the_running_lab_over(lab: Lab, tmp_path: Path) -> None:
    other = {**lab.env, "WEBMG_LAB_DIR": str(tmp_path / "other-lab")}
    done = subprocess.run(
        [sys.executable, "-m", "webmg_ops.cli.main", "lab", "up"],
        env=other,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 4, done.stderr
    assert "another rehearsal lab is running" in done.stderr
    assert lab.status()["hosts"][0]["up"]
