"""Verified backups on rehearsal-lab hosts: real restic to the lab's backup target.

atelier-nord backs up atelier-web1 and atelier-db1 (PostgreSQL ``demo``,
``public.bookings`` 250 rows), each into a repository of its own under
``sftp:restic-atelier-nord@198.18.0.5:/srv/restic/atelier-nord``, with a password of its
own. Each host's key reaches only rclone's append-only restic server on its own folder;
the controller opens each host's repository over SFTP with the client's own key and
vault, and applies the retention and the check from there.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support.argv_record import recording_execs, recording_host_program
from support.backup import (
    HOST_SSH,
    as_root_on,
    rest_over_ssh,
    restic_as_root_on,
    set_up_for_backups,
    stolen_backup_key,
    target_account,
    target_clock,
    target_sshd_log,
)
from support.lab import Lab, edited_contract
from support.moto_s3 import (
    ALLOW_EVERYTHING,
    SETUP_KEY,
    enforce_iam,
    iam_user,
    moto_endpoint,
    s3_client,
)
from support.waiting import wait_until

from webmg_ops.ansible.vault import Vault
from webmg_ops.backups import restic
from webmg_ops.backups.manifest import MANIFEST_PATH, read_manifest
from webmg_ops.backups.repository import host_repositories
from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode
from webmg_ops.lab.network import CONTROLLER_ADDRESS
from webmg_ops.lab.vault import VAULT_FILE, read_vault_values, write_vault_values

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

CLIENT = "atelier-nord"
BACKED_UP = ("atelier-db1", "atelier-web1")
ADDRESSES = {
    "atelier-web1": "198.18.0.41",
    "atelier-db1": "198.18.0.42",
    "backup1": "198.18.0.5",
    "terre-web1": "198.18.0.21",
    "terre-db1": "198.18.0.23",
    "riverton-web1": "198.18.0.31",
    "riverton-web2": "198.18.0.32",
    "riverton-db1": "198.18.0.33",
    "alpenhof-web1": "198.18.0.11",
}
#: The run the orchestrator is killed in.
KILLED_RUN = ("run", CLIENT, "backup", "--reason", "kill")
#: The tasks that are the backup itself: they run (and change something) on every run.
ACTION_TASKS = {
    "Dump the databases and count their rows",
    "Write the manifest of the backup set",
    "Take the snapshot",
    "Remove the stale locks (restic unlock removes only locks whose process is gone)",
}


def run_backup(lab: Lab, client: str = CLIENT, *flags: str) -> tuple[int, dict[str, Any], float]:
    """Run ``backup`` for a client; return its exit status, JSON report and seconds."""
    started = time.monotonic()
    done = lab.cli("run", client, "backup", "--reason", "test", "--json", *flags, timeout=600)
    return done.returncode, json.loads(done.stdout or done.stderr), time.monotonic() - started


def finished(lab: Lab, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    return entry.payload


def repositories(lab: Lab, tmp_path: Path, client: str = CLIENT) -> dict[str, restic.Repository]:
    """Return each host's repository as the controller opens it (the client's key, its vault)."""
    return host_repositories(
        load_client(lab.inventories, client),
        Vault(lab.lab_dir / "vault-password"),
        cache_dir=tmp_path / "restic-cache",
    )


def repository(lab: Lab, tmp_path: Path, host: str, client: str = CLIENT) -> restic.Repository:
    """Return one host's own repository as the controller opens it."""
    return repositories(lab, tmp_path, client)[host]


def snapshot_ids(lab: Lab, tmp_path: Path, client: str = CLIENT) -> set[str]:
    """Return the ids of every snapshot in the client's hosts' repositories."""
    return {
        snapshot.id
        for repo in repositories(lab, tmp_path, client).values()
        for snapshot in restic.list_snapshots(repo)
    }


@pytest.fixture(scope="module")
def backups_taken() -> list[dict[str, Any]]:
    """The backups of atelier-nord this module has taken, newest last."""
    return []


@pytest.fixture
def current_backup(lab: Lab, backups_taken: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    """A backup of atelier-nord whose snapshots are all still in its repositories: its report,
    payload and wall time. The module's last backup while that holds and the hosts are
    still set up for backups; otherwise (another test's backups made retention forget
    one of its snapshots, or another test reset a host) a new one.
    """
    if backups_taken and set_up_for_backups(lab, CLIENT):
        last = backups_taken[-1]
        if set(last["payload"]["evidence"]["snapshots"].values()) <= snapshot_ids(lab, tmp_path):
            return last
    code, report, elapsed = run_backup(lab)
    assert code == ExitCode.OK, report
    print(f"\nbackup of atelier-nord (2 hosts + target): {elapsed:.1f} s")
    backups_taken.append(
        {"report": report, "payload": finished(lab, report["run_id"]), "elapsed": elapsed}
    )
    return backups_taken[-1]


def test_backup_saves_every_host_with_its_manifest_and_database(
    lab: Lab, current_backup: dict[str, Any], tmp_path: Path
) -> None:
    evidence = current_backup["payload"]["evidence"]
    assert current_backup["payload"]["outcome"] == "succeeded"
    assert set(evidence["snapshots"]) == set(BACKED_UP)
    maintenance = evidence["repository_maintenance"]
    assert maintenance["check"]["ok"] is True
    assert maintenance["check"]["subset"].endswith("/91")
    print(
        f"bytes added: {sum(h['bytes_added'] for h in evidence['hosts'].values())}, "
        f"check: {maintenance['check']['duration_s']} s"
    )
    for host, snapshot_id in evidence["snapshots"].items():
        # Each host's snapshot is in its own repository, and only there.
        by_id = {s.id: s for s in restic.list_snapshots(repository(lab, tmp_path, host))}
        assert by_id[snapshot_id].hostname == host
        assert "/var/backups/webmg" in by_id[snapshot_id].paths
        assert evidence["hosts"][host]["repository"].endswith(f"/srv/restic/{CLIENT}/{host}")
    repo = repository(lab, tmp_path, "atelier-db1")
    db_snapshot = evidence["snapshots"]["atelier-db1"]
    restic.restore(repo, db_snapshot, tmp_path / "restored", include=[MANIFEST_PATH])
    manifest = read_manifest(tmp_path / "restored" / MANIFEST_PATH.lstrip("/"))
    assert manifest["host"] == "atelier-db1"
    assert "/etc/hostname" in manifest["files"]
    assert "/var/backups/webmg/db/demo.dump" in manifest["files"]
    (database,) = manifest["databases"]
    assert database == {
        "name": "demo",
        "engine": "postgresql",
        "dump": "/var/backups/webmg/db/demo.dump",
        "row_counts": {"demo.bookings": 250},
    }
    host = evidence["hosts"]["atelier-db1"]
    assert host["databases"][0]["row_counts"] == {"demo.bookings": 250}
    assert host["manifest_files"] == len(manifest["files"])
    assert host["files"]["total"] >= host["manifest_files"]
    assert restic.check_repository(repo).ok
    log = Path(current_backup["report"]["run_log"]).read_text()
    assert "| demo | postgresql | /var/backups/webmg/db/demo.dump | demo.bookings | 250 |" in log


def test_the_agency_prepares_its_target_for_every_client_and_a_second_run_changes_nothing(
    lab: Lab,
) -> None:
    first = next(
        entry.payload
        for entry in lab.entries("run-finished", "agency")
        if entry.payload["action"] == "target"
    )
    assert first["outcome"] == "succeeded", first
    prepared = first["evidence"]["clients"]
    # Every lab client with a repository on the target, each with all its hosts.
    for client in ("alpenhof", "atelier-nord", "riverton", "terre-solidaire"):
        hosts = {host.name for host in load_client(lab.inventories, client).hosts}
        assert set(prepared[client]["hosts"]) == hosts, client
        assert prepared[client]["account"] == f"restic-{client}"
    assert first["evidence"]["left_out"] == []
    done = lab.cli("run", "agency", "target", "--reason", "again", "--json")
    report = json.loads(done.stdout or done.stderr)
    assert done.returncode == ExitCode.OK, report
    assert [host["changed"] for host in report["hosts"]] == [0], report["hosts"]
    # No client's run ever named the target.
    client_runs = [e for e in lab.entries("run-started") if e.client != "agency"]
    assert all("backup1" not in e.payload.get("hosts", []) for e in client_runs)


def test_the_password_stays_root_only_and_the_target_knows_each_host_by_its_host_key(
    lab: Lab, current_backup: dict[str, Any]
) -> None:
    done = lab.ssh(
        ADDRESSES["atelier-web1"],
        "sudo stat -c '%a %U %n' /var/lib/webmg-backup "
        "/var/lib/webmg-backup/restic-password /var/lib/webmg-backup/known_hosts",
    )
    assert done.returncode == 0, done.stderr
    modes = [line.split()[:2] for line in done.stdout.splitlines()]
    assert modes == [["700", "root"], ["600", "root"], ["600", "root"]]
    keys = lab.ssh(
        ADDRESSES["backup1"], f"sudo cat /var/lib/webmg-restic/restic-{CLIENT}/.ssh/authorized_keys"
    )
    assert keys.returncode == 0, keys.stderr
    lines = {
        line.split("ssh-ed25519 ")[1].split()[0]: line
        for line in keys.stdout.splitlines()
        if "ssh-ed25519 " in line and not line.startswith("#")
    }
    assert len(lines) == 3
    # Each host is known by its own SSH host key (read here, from the host itself), which
    # only serves its own folder, append-only; the controller's key speaks SFTP.
    for host in BACKED_UP:
        public = lab.ssh(ADDRESSES[host], "cat /etc/ssh/ssh_host_ed25519_key.pub")
        line = lines.pop(public.stdout.split()[1])
        assert line.startswith(
            'restrict,command="rclone serve restic --stdio --append-only --config /dev/null '
            f'/srv/restic/{CLIENT}/{host}" ssh-ed25519 '
        ), line
    (controller,) = lines.values()
    assert controller.startswith('restrict,command="internal-sftp" ssh-ed25519 ')
    # The account cannot change its own keys: they belong to root.
    owners = lab.ssh(
        ADDRESSES["backup1"],
        f"sudo stat -c '%U %a' /var/lib/webmg-restic/restic-{CLIENT} "
        f"/var/lib/webmg-restic/restic-{CLIENT}/.ssh "
        f"/var/lib/webmg-restic/restic-{CLIENT}/.ssh/authorized_keys",
    )
    assert owners.stdout.split("\n")[:3] == ["root 755", "root 755", "root 644"], owners.stdout


def test_a_host_reaches_only_its_own_repository_and_never_the_clients_password(
    lab: Lab, current_backup: dict[str, Any], tmp_path: Path
) -> None:
    web = ADDRESSES["atelier-web1"]
    own = {
        snapshot.id for snapshot in restic.list_snapshots(repository(lab, tmp_path, "atelier-web1"))
    }
    # Root on the web host, with what the role left there, asks for the database host's
    # repository: whatever it names, its key is served its own folder, with its own snapshots.
    asked = restic_as_root_on(
        lab, web, CLIENT, "-r", f"rclone:/srv/restic/{CLIENT}/atelier-db1", "snapshots", "--json"
    )
    assert asked.returncode == 0, asked.stderr
    served = json.loads(asked.stdout)
    assert {snapshot["id"] for snapshot in served} == own
    assert {snapshot["hostname"] for snapshot in served} == {"atelier-web1"}
    # Each host holds a password of its own, and never the client's.
    held = {
        host: lab.ssh(ADDRESSES[host], "sudo cat /var/lib/webmg-backup/restic-password").stdout
        for host in BACKED_UP
    }
    vault = read_vault_values(lab.inventories / CLIENT / VAULT_FILE, lab.lab_dir / "vault-password")
    assert vault is not None
    assert len(set(held.values())) == len(BACKED_UP)
    assert str(vault["webmg_restic_password"]) not in held.values()
    assert all(len(password) == 64 for password in held.values())


def target_files(lab: Lab, client: str = CLIENT) -> dict[str, str]:
    """Return every file of CLIENT's repositories on the backup target: path to SHA-256."""
    done = lab.ssh(
        ADDRESSES["backup1"],
        f"sudo find /srv/restic/{client} -type f -exec sha256sum {{}} +",
    )
    assert done.returncode == 0, done.stderr
    return {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()}


def test_a_hosts_key_can_neither_delete_nor_rewrite_its_history_nor_touch_another_hosts(
    lab: Lab, current_backup: dict[str, Any], tmp_path: Path
) -> None:
    web_folder = f"/srv/restic/{CLIENT}/atelier-web1"
    db_folder = f"/srv/restic/{CLIENT}/atelier-db1"
    before = target_files(lab)
    snapshot = current_backup["payload"]["evidence"]["snapshots"]["atelier-web1"]
    try:
        db_config = lab.ssh(ADDRESSES["backup1"], f"sudo base64 -w0 {db_folder}/config").stdout
        # Root on the web host takes the host's key and speaks the server's protocol itself.
        key = stolen_backup_key(lab, ADDRESSES["atelier-web1"], tmp_path)
        known_hosts = lab.inventories / "agency" / "known_hosts"
        forged_key = "0" * 64
        responses = rest_over_ssh(
            key,
            known_hosts,
            target_account(CLIENT),
            [
                ("GET", "/config", b""),
                ("DELETE", f"/snapshots/{snapshot}", b""),
                ("POST", f"/snapshots/{snapshot}", b"a forged snapshot"),
                ("DELETE", "/config", b""),
                ("GET", "/../atelier-db1/config", b""),
                ("GET", "/%2e%2e/atelier-db1/config", b""),
                ("POST", f"/../atelier-db1/keys/{forged_key}", b"a forged key"),
                ("DELETE", "/../atelier-db1/config", b""),
            ],
        )
        statuses = [response.status for response in responses]
        # The channel works: its own repository's config is served...
        assert statuses[0] == 200, statuses
        # ...but deleting or overwriting a snapshot, or the config, is forbidden.
        assert statuses[1:4] == [403, 403, 403], statuses
        # Nothing of the database host's repository is served to the web host's key.
        import base64

        db_bytes = base64.b64decode(db_config)
        assert all(response.body != db_bytes for response in responses)
        after = target_files(lab)
        # Every file that was there is still there, unchanged; nothing new outside its folder.
        assert {path: after.get(path) for path in before} == before
        assert all(path.startswith(web_folder + "/") for path in set(after) - set(before))
        assert not any(path.startswith(db_folder) for path in set(after) - set(before))
        # restic itself, run as the role runs it, cannot forget the host's snapshot either.
        forgot = restic_as_root_on(
            lab, ADDRESSES["atelier-web1"], CLIENT, "forget", "--prune", snapshot
        )
        assert forgot.returncode != 0, forgot.stdout
        assert snapshot in {
            s.id for s in restic.list_snapshots(repository(lab, tmp_path, "atelier-web1"))
        }
        assert target_files(lab).items() >= before.items()
    finally:
        # Whatever the attack managed to add (a file under a name the append-only server
        # had no file for) goes, so that no later test meets a forged file.
        added = sorted(set(target_files(lab)) - set(before))
        if added:
            lab.ssh(ADDRESSES["backup1"], shlex.join(["sudo", "rm", "-f", *added]))


#: Another client on the same backup target, whose repositories the attacks aim at.
VICTIM = "alpenhof"


def test_a_host_gets_no_shell_on_the_target_and_cannot_reach_another_clients_repositories(
    lab: Lab, current_backup: dict[str, Any]
) -> None:
    code, report, _ = run_backup(lab, VICTIM)
    assert code == ExitCode.OK, json.dumps(report["hosts"])
    web = ADDRESSES["atelier-web1"]
    before = {**target_files(lab), **target_files(lab, VICTIM)}
    # Root on the web host, with its host key: no command of its choosing runs...
    as_root_on(lab, web, [*HOST_SSH, "-n", "--", target_account(CLIENT), "rm -rf /srv/restic"])
    # ...SFTP is not served to it...
    sftp = lab.ssh(
        web,
        f"printf 'ls /srv/restic/{VICTIM}\\nrm /srv/restic/{VICTIM}/alpenhof-web1/config\\n' | "
        + shlex.join(["sudo", "sftp", "-b", "-", *HOST_SSH[1:], target_account(CLIENT)]),
    )
    assert sftp.returncode != 0, sftp.stdout
    # ...and its key does not open the other client's account: the target's sshd says so.
    # (restic relays its ssh's errors from a pipe of its own, and may end before they come:
    # its output alone cannot tell a refusal from a connection that broke.)
    since = target_clock(lab)
    other = restic_as_root_on(lab, web, VICTIM, "snapshots", account=target_account(VICTIM))
    assert other.returncode != 0, other.stdout
    victim = target_account(VICTIM).split("@")[0]
    # sshd names a login that ended before it was let in: the client disconnected, or closed.
    refused = (
        f"Disconnected from authenticating user {victim} {web} ",
        f"Connection closed by authenticating user {victim} {web} ",
    )
    # journald may write sshd's line a moment after restic ended: wait for it.
    assert wait_until(
        lambda: any(line.startswith(refused) for line in target_sshd_log(lab, since)),
        30,
        every_s=1,
    ), target_sshd_log(lab, since)
    accepted = f"Accepted publickey for {victim} "
    assert not [line for line in target_sshd_log(lab, since) if line.startswith(accepted)]
    # Both clients' repositories are whole.
    assert {**target_files(lab), **target_files(lab, VICTIM)}.items() >= before.items()


def test_a_host_the_target_has_not_authorized_is_told_to_run_the_agencys_target_run(
    lab: Lab,
) -> None:
    keys = "/var/lib/webmg-restic/restic-terre-solidaire/.ssh/authorized_keys"
    target = ADDRESSES["backup1"]
    # As for a host added to the inventory since the agency's last target run.
    forget = f"sudo cp -p {keys} {keys}.kept && sudo sed -i '/ terre-web1$/d' {keys}"
    assert lab.ssh(target, forget).returncode == 0
    try:
        assert "terre-web1" not in lab.ssh(target, f"sudo cat {keys}").stdout
        code, report, _ = run_backup(lab, "terre-solidaire", "--limit", "terre-web1")
    finally:
        restored = lab.ssh(target, f"sudo mv {keys}.kept {keys}")
        assert restored.returncode == 0, restored.stderr
    assert code == ExitCode.FAILED, report
    (host,) = report["hosts"]
    (failed,) = host["failed_tasks"]
    assert failed["task"] == "Refuse to go on when the repository's server refuses this host's key"
    assert "refused this host's key" in failed["message"], failed
    assert "webmg-ops run agency target" in failed["message"], failed


def test_second_backup_changes_no_setup_and_adds_snapshots(
    lab: Lab, current_backup: dict[str, Any], tmp_path: Path
) -> None:
    code, report, elapsed = run_backup(lab)
    assert code == ExitCode.OK, report
    print(f"\nsecond backup of atelier-nord: {elapsed:.1f} s")
    for host in report["hosts"]:
        assert set(host["changed_tasks"]) <= ACTION_TASKS, host
    # The backup target is the agency's: a client's run never reaches it.
    assert "backup1" not in {h["host"] for h in report["hosts"]}
    evidence = finished(lab, report["run_id"])["evidence"]
    assert set(evidence["snapshots"]) == set(BACKED_UP)
    assert set(evidence["snapshots"].values()).isdisjoint(
        current_backup["payload"]["evidence"]["snapshots"].values()
    )
    assert set(evidence["snapshots"].values()) <= snapshot_ids(lab, tmp_path)


def test_check_mode_changes_nothing(
    lab: Lab, current_backup: dict[str, Any], tmp_path: Path
) -> None:
    before = snapshot_ids(lab, tmp_path)
    code, report, _ = run_backup(lab, CLIENT, "--check")
    assert code == ExitCode.OK, report
    assert all(host["changed"] == 0 for host in report["hosts"]), report["hosts"]
    assert snapshot_ids(lab, tmp_path) == before


def test_a_killed_orchestrator_is_recorded_and_the_next_backup_recovers(
    lab: Lab, current_backup: dict[str, Any], tmp_path: Path
) -> None:
    web = ADDRESSES["atelier-web1"]
    # Enough data that restic is still at work when the orchestrator dies.
    bulk = "/var/lib/webmg-demo/bulk.bin"
    assert (
        lab.ssh(web, f"sudo head -c 200000000 /dev/urandom | sudo tee {bulk} >/dev/null").returncode
        == 0
    )
    try:
        with recording_host_program(lab, web, "restic") as restic_calls:
            orchestrator = subprocess.Popen(
                [sys.executable, "-m", "webmg_ops.cli.main", *KILLED_RUN],
                env=lab.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # The shim records restic's command line just before restic starts.
            assert wait_until(
                lambda: any("backup" in argv for argv in restic_calls()), 300, every_s=0.5
            ), "restic never started a backup"
            os.kill(orchestrator.pid, signal.SIGKILL)
        orchestrator.wait(timeout=30)
        (started,) = [
            e for e in lab.entries("run-started", CLIENT) if e.payload.get("reason") == "kill"
        ]
        run_id = started.payload["run_id"]
        # The next command closes the run of the dead process.
        done = lab.cli("runs", CLIENT)
        assert done.returncode == 0, done.stderr
        assert finished(lab, run_id)["outcome"] == "interrupted"
        code, report, _ = run_backup(lab)
        assert code == ExitCode.OK, json.dumps(report["hosts"])
        evidence = finished(lab, report["run_id"])["evidence"]
        assert set(evidence["snapshots"]) == set(BACKED_UP)
        assert evidence["repository_maintenance"]["check"]["ok"] is True
        removed = [lock for h in evidence["hosts"].values() for lock in h["stale_locks_removed"]]
        print(f"\nstale locks removed after the kill: {removed}")
        assert restic.check_repository(repository(lab, tmp_path, "atelier-web1")).ok
    finally:
        lab.ssh(web, f"sudo rm -f {bulk}")


@pytest.fixture
def canary_client(lab: Lab) -> Iterator[str]:
    """terre-solidaire with a recognisable restic password, its repositories empty before
    and after (the target serves each host's one folder, whatever the password)."""
    canary = "CanaryResticPw-" + os.urandom(6).hex()
    vault_file = lab.inventories / "terre-solidaire" / VAULT_FILE
    original = vault_file.read_bytes()
    empty = "sudo find /srv/restic/terre-solidaire -mindepth 2 -delete"
    assert lab.ssh(ADDRESSES["backup1"], empty).returncode == 0
    write_vault_values(
        vault_file, lab.lab_dir / "vault-password", {"webmg_restic_password": canary}
    )
    try:
        yield canary
    finally:
        vault_file.write_bytes(original)
        lab.ssh(ADDRESSES["backup1"], empty)


def test_the_restic_password_never_reaches_records_outputs_or_argv(
    lab: Lab, canary_client: str, tmp_path: Path
) -> None:
    hosts = ("terre-web1", "terre-db1")
    with ExitStack() as recording:
        on_hosts = {
            host: recording.enter_context(recording_host_program(lab, ADDRESSES[host], "restic"))
            for host in hosts
        }
        on_controller = recording.enter_context(recording_execs(tmp_path))
        done = lab.cli("run", "terre-solidaire", "backup", "--reason", "canary", timeout=600)
        seen = {host: calls() for host, calls in on_hosts.items()}
    assert done.returncode == ExitCode.OK, done.stderr
    for host, calls in seen.items():
        assert [argv for argv in calls if "backup" in argv], (host, calls)
        assert [argv for argv in calls if canary_client in " ".join(argv)] == [], host
    assert [argv for argv in on_controller if "restic" in Path(argv[0]).name], on_controller
    assert [argv for argv in on_controller if canary_client in " ".join(argv)] == []
    assert canary_client not in done.stdout + done.stderr
    var = lab.root / "var"
    leaked = [
        path
        for path in var.rglob("*")
        if path.is_file() and canary_client.encode() in path.read_bytes()
    ]
    assert leaked == []
    assert canary_client.encode() not in (var / "ledger.db").read_bytes()


#: No other test backs up or drills this client: its drills on record stay its own.
S3_CLIENT = "riverton"
S3_HOSTS = ("riverton-web1", "riverton-web2", "riverton-db1")
S3_BUCKET = "webmg-backups"
#: A bucket no host key is given anything on (as the offsite copy's would be).
OTHER_BUCKET = "webmg-offsite"


@dataclass(frozen=True)
class PolicedBucket:
    """An S3 endpoint that checks IAM policies, and the keys made on it."""

    endpoint: str
    repository: str
    controller: tuple[str, str]
    hosts: dict[str, tuple[str, str]]
    #: A key no policy was attached to.
    bare: tuple[str, str]

    def client(self, key: tuple[str, str]) -> Any:
        """Return a boto3 S3 client holding KEY."""
        return s3_client(self.endpoint, key)


def s3_key_on_host(lab: Lab, host: str) -> tuple[str, str]:
    """Return the S3 key pair the backup left on HOST, as root there would read it."""
    read = lab.ssh(ADDRESSES[host], "sudo cat /var/lib/webmg-backup/s3-credentials")
    assert read.returncode == 0, read.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(read.stdout)
    return parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]


@pytest.fixture
def policed_bucket(lab: Lab, tmp_path: Path) -> Iterator[PolicedBucket]:
    """riverton's repositories in a versioned bucket of an endpoint that enforces IAM: a key
    for the controller that may do anything, and for each host a key with the policy that
    ``webmg-ops s3-policies riverton`` prints, all in riverton's vault (restored afterwards).
    """
    vault_file = lab.inventories / S3_CLIENT / VAULT_FILE
    password_file = lab.lab_dir / "vault-password"
    original = vault_file.read_bytes()
    with moto_endpoint(CONTROLLER_ADDRESS, tmp_path / "moto.log") as endpoint:
        repository = f"s3:{endpoint}/{S3_BUCKET}/{S3_CLIENT}"
        with edited_contract(
            lab.inventories,
            S3_CLIENT,
            lambda data: data["backup"].update(repository=repository),
        ):
            printed = lab.cli("s3-policies", S3_CLIENT)
            assert printed.returncode == ExitCode.OK, printed.stderr
        policies = json.loads(printed.stdout)
        assert sorted(policies) == sorted(S3_HOSTS)
        # Set up while the endpoint still takes any key; checked from then on.
        admin = s3_client(endpoint, SETUP_KEY)
        for bucket in (S3_BUCKET, OTHER_BUCKET):
            admin.create_bucket(Bucket=bucket)
            admin.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        controller = iam_user(endpoint, "controller", ALLOW_EVERYTHING)
        hosts = {host: iam_user(endpoint, host, policies[host]) for host in S3_HOSTS}
        bare = iam_user(endpoint, "bare", None)
        enforce_iam(endpoint)
        values = read_vault_values(vault_file, password_file)
        assert values is not None
        write_vault_values(
            vault_file,
            password_file,
            {
                **values,
                "webmg_s3_access_key_id": controller[0],
                "webmg_s3_secret_access_key": controller[1],
                "webmg_s3_host_keys": {
                    host: {"access_key_id": key[0], "secret_access_key": key[1]}
                    for host, key in hosts.items()
                },
            },
        )
        try:
            yield PolicedBucket(endpoint, repository, controller, hosts, bare)
        finally:
            vault_file.write_bytes(original)


def s3_contract(bucket: PolicedBucket) -> Callable[[dict[str, Any]], None]:
    """Return the change that puts riverton's repositories in BUCKET (its offsite copy, on
    the lab's other endpoint with other keys, is left out of this test)."""

    def change(data: dict[str, Any]) -> None:
        data["backup"].update(repository=bucket.repository)
        data["backup"].pop("offsite", None)

    return change


def test_a_repository_on_s3_is_backed_up_and_drilled_with_a_key_per_host(
    lab: Lab, policed_bucket: PolicedBucket, tmp_path: Path
) -> None:
    bucket = policed_bucket
    # What riverton has on the agency's target now (an earlier backup to it may have left
    # a repository there): the backup to S3 must add nothing to it.
    target_files = f"sudo find /srv/restic/{S3_CLIENT} -type f"
    before = lab.ssh(ADDRESSES["backup1"], target_files)
    assert before.returncode == 0, before
    with ExitStack() as recording:
        on_hosts = {
            host: recording.enter_context(recording_host_program(lab, ADDRESSES[host], "restic"))
            for host in S3_HOSTS
        }
        with edited_contract(lab.inventories, S3_CLIENT, s3_contract(bucket)):
            code, report, _elapsed = run_backup(lab, S3_CLIENT)
            assert code == ExitCode.OK, json.dumps(report["hosts"])
            drilled = lab.cli("drill", S3_CLIENT, "--json", timeout=600)
            # A second backup changes nothing but the backup itself.
            code, again, _elapsed = run_backup(lab, S3_CLIENT, "--limit", "riverton-web1")
            assert code == ExitCode.OK, again
            assert set(again["hosts"][0]["changed_tasks"]) <= ACTION_TASKS, again["hosts"]
            seen = {host: calls() for host, calls in on_hosts.items()}
    assert drilled.returncode == ExitCode.OK, drilled.stdout + drilled.stderr
    maintenance = finished(lab, report["run_id"])["evidence"]["repository_maintenance"]
    assert maintenance["check"]["ok"] is True, maintenance
    controller = bucket.client(bucket.controller)
    for host in S3_HOSTS:
        controller.head_object(Bucket=S3_BUCKET, Key=f"{S3_CLIENT}/{host}/config")
    # (The agency's target run prepared riverton's folders; nothing was written there.)
    on_target = lab.ssh(ADDRESSES["backup1"], target_files)
    assert on_target.returncode == 0, on_target
    assert sorted(on_target.stdout.split()) == sorted(before.stdout.split())
    drill = finished(lab, json.loads(drilled.stdout)["run_id"])["evidence"]["hosts"]
    assert {name: item["ok"] for name, item in drill.items()} == dict.fromkeys(S3_HOSTS, True)
    # Each host holds its own key, in a root-only file, never on a command line; not the
    # controller's.
    for host in S3_HOSTS:
        assert s3_key_on_host(lab, host) == bucket.hosts[host], host
        mode = lab.ssh(ADDRESSES[host], "sudo stat -c '%a %U' /var/lib/webmg-backup/s3-credentials")
        assert mode.stdout.split() == ["600", "root"], host
    secrets_used = [bucket.controller[1], *(key[1] for key in bucket.hosts.values())]
    for host, calls in seen.items():
        assert [argv for argv in calls if "backup" in argv], (host, calls)
        command_lines = "\n".join(" ".join(argv) for argv in calls)
        assert not [s for s in secrets_used if s in command_lines], host
    assert not [s for s in secrets_used if s in json.dumps([report, again]) + drilled.stdout]
    var = lab.root / "var"
    for secret in secrets_used:
        assert [
            p for p in var.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()
        ] == []

    # Root on riverton-web1, with the key it finds there:
    stolen = bucket.client(s3_key_on_host(lab, "riverton-web1"))
    own = f"{S3_CLIENT}/riverton-web1"
    snapshots = stolen.list_objects_v2(Bucket=S3_BUCKET, Prefix=f"{own}/snapshots/")
    snapshot = snapshots["Contents"][0]["Key"]
    original = controller.get_object(Bucket=S3_BUCKET, Key=snapshot)["Body"].read()
    (first_version,) = controller.list_object_versions(Bucket=S3_BUCKET, Prefix=snapshot)[
        "Versions"
    ]
    refused: dict[str, Callable[[], Any]] = {
        "delete its own snapshot": lambda: stolen.delete_object(Bucket=S3_BUCKET, Key=snapshot),
        "delete its snapshot's version": lambda: stolen.delete_object(
            Bucket=S3_BUCKET, Key=snapshot, VersionId=first_version["VersionId"]
        ),
        "delete its own data": lambda: stolen.delete_object(Bucket=S3_BUCKET, Key=f"{own}/config"),
        "read another host's repository": lambda: stolen.get_object(
            Bucket=S3_BUCKET, Key=f"{S3_CLIENT}/riverton-db1/config"
        ),
        "write into another host's repository": lambda: stolen.put_object(
            Bucket=S3_BUCKET, Key=f"{S3_CLIENT}/riverton-db1/snapshots/{'0' * 64}", Body=b"{}"
        ),
        "list another bucket": lambda: stolen.list_objects_v2(Bucket=OTHER_BUCKET),
        "write into another bucket": lambda: stolen.put_object(
            Bucket=OTHER_BUCKET, Key="planted", Body=b"x"
        ),
    }
    for attack, attempt in refused.items():
        with pytest.raises(ClientError) as denied:
            attempt()
        assert denied.value.response["Error"]["Code"] == "AccessDenied", attack
    # A bucket policy cannot refuse an overwrite: the bucket's versions keep the snapshot,
    # which the host's key may not delete, and the controller's check names the change.
    stolen.put_object(Bucket=S3_BUCKET, Key=snapshot, Body=b"rewritten history")
    kept = controller.get_object(
        Bucket=S3_BUCKET, Key=snapshot, VersionId=first_version["VersionId"]
    )["Body"].read()
    assert kept == original
    try:
        with edited_contract(lab.inventories, S3_CLIENT, s3_contract(bucket)):
            (repo,) = host_repositories(
                load_client(lab.inventories, S3_CLIENT),
                Vault(lab.lab_dir / "vault-password"),
                hosts=("riverton-web1",),
                cache_dir=tmp_path / "cache",
            ).values()
        check = restic.check_repository(repo)
        assert not check.ok and check.errors, check
    finally:
        controller.put_object(Bucket=S3_BUCKET, Key=snapshot, Body=original)


def with_key_of_web1(lab: Lab, key: tuple[str, str]) -> None:
    """Give riverton-web1 KEY in riverton's vault (the fixture restores the vault)."""
    vault_file = lab.inventories / S3_CLIENT / VAULT_FILE
    password_file = lab.lab_dir / "vault-password"
    values = read_vault_values(vault_file, password_file)
    assert values is not None
    host_keys: dict[str, Any] = dict(values["webmg_s3_host_keys"])  # type: ignore[call-overload]
    host_keys["riverton-web1"] = {"access_key_id": key[0], "secret_access_key": key[1]}
    write_vault_values(vault_file, password_file, {**values, "webmg_s3_host_keys": host_keys})


def test_an_s3_key_that_is_the_controllers_or_has_no_policy_is_refused_with_what_to_do(
    lab: Lab, policed_bucket: PolicedBucket
) -> None:
    with edited_contract(lab.inventories, S3_CLIENT, s3_contract(policed_bucket)):
        with_key_of_web1(lab, policed_bucket.controller)
        code, report, _elapsed = run_backup(lab, S3_CLIENT, "--limit", "riverton-web1")
        assert code == ExitCode.FAILED, report
        (host,) = report["hosts"]
        (failed,) = host["failed_tasks"]
        assert "is also the controller's or another host's" in failed["message"], failed
        # The controller's key was not written to the host.
        on_host = lab.ssh(
            ADDRESSES["riverton-web1"], "sudo cat /var/lib/webmg-backup/s3-credentials || true"
        )
        assert on_host.returncode == 0 and policed_bucket.controller[1] not in on_host.stdout
        # A key of its own that the agency gave no policy: the endpoint refuses it, and the
        # run says what to attach.
        with_key_of_web1(lab, policed_bucket.bare)
        code, report, _elapsed = run_backup(lab, S3_CLIENT, "--limit", "riverton-web1")
    assert code == ExitCode.FAILED, report
    (host,) = report["hosts"]
    (failed,) = host["failed_tasks"]
    assert "The S3 endpoint refused this host's key" in failed["message"], failed
    assert "webmg-ops s3-policies riverton" in failed["message"], failed


TIMER_CLIENT = "alpenhof"
TIMER_HOST = "alpenhof-web1"
#: Far away: the timer never fires by itself while the tests run; the test starts its service.
TIMER_SCHEDULE = "*-01-01 03:00:00"


def test_a_timer_backs_up_between_runs_and_the_next_run_records_it(
    lab: Lab, tmp_path: Path
) -> None:
    web = ADDRESSES[TIMER_HOST]
    with edited_contract(
        lab.inventories,
        TIMER_CLIENT,
        lambda data: data["backup"].update(timer=TIMER_SCHEDULE),
    ):
        # Every host, the target too: the first backup authorizes the hosts' keys there.
        code, report, _ = run_backup(lab, TIMER_CLIENT)
        assert code == ExitCode.OK, json.dumps(report["hosts"])
        timer = finished(lab, report["run_id"])["evidence"]["hosts"][TIMER_HOST]["timer"]
        assert timer == {"schedule": TIMER_SCHEDULE, "runs": []}
        assert lab.ssh(web, "systemctl is-enabled webmg-backup.timer").stdout.strip() == "enabled"
        # What the timer starts, started now: a backup with no orchestrator around.
        started = lab.ssh(web, "sudo systemctl start webmg-backup.service")
        assert started.returncode == 0, started.stderr
        repo = repository(lab, tmp_path, TIMER_HOST, TIMER_CLIENT)
        (snapshot,) = restic.list_snapshots(repo, tags=["webmg-timer"])
        assert "webmg" in snapshot.tags  # the level's retention applies to it too
        # The timer's snapshot holds the manifest and the data, like any other.
        restic.restore(repo, snapshot.id, tmp_path / "restored", include=[MANIFEST_PATH])
        manifest = read_manifest(tmp_path / "restored" / MANIFEST_PATH.lstrip("/"))
        assert manifest["host"] == TIMER_HOST and len(manifest["files"]) > 100
        code, report, _ = run_backup(lab, TIMER_CLIENT, "--limit", TIMER_HOST)
        assert code == ExitCode.OK, json.dumps(report["hosts"])
    # The run after it records the timer's backup.
    payload = finished(lab, report["run_id"])
    (run,) = payload["evidence"]["hosts"][TIMER_HOST]["timer"]["runs"]
    assert run["ok"] is True and run["error"] is None, run
    assert snapshot.id.startswith(run["snapshot_id"])
    # Besides the backup itself, that run changed only what it collected: the timer stays as set.
    (host,) = [h for h in report["hosts"] if h["host"] == TIMER_HOST]
    assert set(host["changed_tasks"]) <= ACTION_TASKS | {
        "Collect the timer's runs since the last backup run"
    }, host
    # The run held the timer off only while it wrote the dumps and the snapshot.
    assert lab.ssh(web, "sudo test -e /var/lib/webmg-backup/run-in-progress").returncode == 1
    # The contract without a timer: the next run removes it.
    code, report, _ = run_backup(lab, TIMER_CLIENT, "--limit", TIMER_HOST)
    assert code == ExitCode.OK, report
    gone = lab.ssh(web, "ls /etc/systemd/system/webmg-backup.timer /usr/local/lib/webmg-backup")
    assert gone.returncode != 0 and gone.stdout == "", gone.stdout
    timer = finished(lab, report["run_id"])["evidence"]["hosts"][TIMER_HOST]["timer"]
    assert timer == {"schedule": None, "runs": []}
