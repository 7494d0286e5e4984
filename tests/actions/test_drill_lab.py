"""Restore drills end to end: real restic over real SFTP to the lab's backup target.

The corruption tests damage the repository of a client no other test drills
(alpenhof) and put every byte back afterwards, so each stands alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.backup import restic_as_root_on, set_up_for_backups
from support.lab import Lab, edited_contract

from webmg_ops.ansible.vault import Vault
from webmg_ops.backups.manifest import MANIFEST_PATH
from webmg_ops.backups.repository import host_repository
from webmg_ops.backups.restic import list_snapshots, run_restic
from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

CLIENT = "atelier-nord"
DAMAGED = "alpenhof"
BACKUP1 = "198.18.0.5"
WEB1 = "198.18.0.41"


def backed_up(lab: Lab, client: str) -> None:
    """Make sure CLIENT has a successful backup on record and every host is still set up
    for backups; run a backup otherwise.

    Another test may have reset one of CLIENT's hosts since the last backup (a reset
    wipes what the backup role wrote there), so the ledger alone does not say the
    hosts can still write to their repositories.
    """
    on_record = any(
        entry.payload.get("action") == "backup" and entry.payload.get("outcome") == "succeeded"
        for entry in lab.entries("run-finished", client)
    )
    if not (on_record and set_up_for_backups(lab, client)):
        backup = lab.cli("run", client, "backup", "--reason", "before a drill", "--json")
        assert backup.returncode == ExitCode.OK, backup.stderr[-2000:]


def drill(lab: Lab, client: str, *flags: str) -> tuple[int, dict[str, Any]]:
    done = lab.cli("drill", client, *flags, "--json")
    return done.returncode, json.loads(done.stdout or done.stderr)


def failed_drill(lab: Lab, client: str) -> tuple[str, str]:
    """Drill CLIENT, which must fail and be recorded so; return the hosts' notes and the run log."""
    code, report = drill(lab, client)
    assert code == ExitCode.FAILED, report
    payload = finished(lab, report["run_id"])
    assert payload["outcome"] == "failed"
    notes = " ".join(host["note"] for host in payload["hosts"])
    return notes, Path(report["run_log"]).read_text()


def finished(lab: Lab, run_id: str) -> dict[str, Any]:
    (entry,) = [e for e in lab.entries("run-finished") if e.payload["run_id"] == run_id]
    return entry.payload


def on_backup1(lab: Lab, command: str) -> str:
    done = lab.ssh(BACKUP1, f"sudo sh -c {shlex.quote(command)}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_backup_then_drill_verifies_files_databases_rpo_and_rto(lab: Lab) -> None:
    backed_up(lab, CLIENT)
    code, report = drill(lab, CLIENT)
    assert code == ExitCode.OK, report
    payload = finished(lab, report["run_id"])
    assert payload["outcome"] == "succeeded"
    hosts = payload["evidence"]["hosts"]
    assert set(hosts) == {"atelier-web1", "atelier-db1"}
    for item in hosts.values():
        assert item["ok"] is True
        assert item["files_checked"] > 100  # /etc and the app's data
        assert item["mismatches"] == []
        assert item["rpo_s"] > 0 and item["rto_s"] > 0
        assert item["rpo_target"] == "1d" and item["rto_target"] == "1d"
    assert hosts["atelier-db1"]["databases"]["demo"]["tables"]["demo.bookings"] == {
        "expected": 250,
        "restored": 250,
    }
    # The shop started on a copy of its restored data and answered its health check.
    assert hosts["atelier-web1"]["restore_check"]["status"] == 200
    assert hosts["atelier-web1"]["restore_check"]["ok"] is True
    assert hosts["atelier-db1"]["restore_check"] is None  # not in the web group
    assert_no_copy_left(lab)
    # The drill report (the run log) shows what was restored and checked.
    log = Path(report["run_log"]).read_text()
    assert "| atelier-db1 |" in log
    assert "demo.bookings 250/250 rows" in log
    assert "| 200 in " in log
    assert "verified" in log
    # Nothing restored is kept on the controller.
    assert not any((lab.settings.var_dir / "runs" / report["run_id"]).rglob("shadow"))


def assert_no_copy_left(lab: Lab) -> None:
    """Nothing of a restore check stays on the web host: no copy, nothing on its port."""
    left = lab.ssh(WEB1, "ls -d /var/tmp/webmg-drill.* 2>/dev/null; ss -Hltn 'sport = :18080'")
    assert left.stdout.strip() == "", left.stdout


def test_an_application_that_fails_on_the_restored_copy_fails_the_drill(lab: Lab) -> None:
    backed_up(lab, CLIENT)
    with edited_contract(
        lab.inventories,
        CLIENT,
        lambda data: data["backup"]["restore_check"].update(path="/no-such-page"),
    ):
        code, report = drill(lab, CLIENT)
    assert code == ExitCode.FAILED, report
    web = finished(lab, report["run_id"])["evidence"]["hosts"]["atelier-web1"]
    assert web["restore_check"]["status"] == 404
    assert any(
        "application on the restored copy: GET /no-such-page answered 404 (expected 200)" in f
        for f in web["failures"]
    ), web["failures"]
    assert web["mismatches"] == []  # the files themselves were fine
    assert_no_copy_left(lab)


def test_a_restore_check_as_an_account_with_uid_0_is_refused(lab: Lab) -> None:
    backed_up(lab, CLIENT)
    # root by another name: a contract's pattern cannot see it, the host can.
    alias = "webmg-uid0"
    made = lab.ssh(
        WEB1, f"sudo useradd -o -u 0 -g 0 -M -d /nonexistent -s /usr/sbin/nologin {alias}"
    )
    assert made.returncode == 0, made.stderr
    try:
        with edited_contract(
            lab.inventories,
            CLIENT,
            lambda data: data["backup"]["restore_check"].update(user=alias),
        ):
            code, report = drill(lab, CLIENT)
    finally:
        # --force: every process of uid 0 counts as the alias logged in.
        removed = lab.ssh(WEB1, f"sudo userdel --force {alias}")
        assert removed.returncode == 0, removed.stderr
    assert code == ExitCode.FAILED, report
    web = finished(lab, report["run_id"])["evidence"]["hosts"]["atelier-web1"]
    assert web["restore_check"]["detail"] == (
        f"refused: {alias} has uid 0 on the host; the restore check never runs as root"
    )
    assert web["mismatches"] == []  # the files themselves were fine
    assert_no_copy_left(lab)


def test_a_file_deleted_from_live_data_after_the_backup_is_restored(lab: Lab) -> None:
    backed_up(lab, CLIENT)  # the drill needs the database host's snapshot too
    marker = "/var/lib/webmg-demo/drill-marker.txt"
    assert lab.ssh(WEB1, f"echo kept-by-backup | sudo tee {marker}").returncode == 0
    backup = lab.cli("run", CLIENT, "backup", "--limit", "atelier-web1", "--reason", "marker")
    assert backup.returncode == ExitCode.OK, backup.stderr[-2000:]
    assert lab.ssh(WEB1, f"sudo rm {marker}").returncode == 0
    code, report = drill(lab, CLIENT)
    assert code == ExitCode.OK, report
    # The drill checked the snapshot's manifest, which lists the deleted file.
    client = load_client(lab.inventories, CLIENT)
    repository = host_repository(
        client,
        "atelier-web1",
        Vault(Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"])),
        cache_dir=lab.root / "c",
    )
    latest = list_snapshots(repository)[-1]
    manifest = json.loads(
        run_restic(repository, ["dump", latest.id, MANIFEST_PATH], command="dump").stdout
    )
    assert marker in manifest["files"]
    evidence = finished(lab, report["run_id"])["evidence"]["hosts"]["atelier-web1"]
    assert evidence["snapshot"] == latest.id[:8]


def test_a_snapshot_labelled_as_another_host_is_not_drilled_as_that_host(lab: Lab) -> None:
    backed_up(lab, CLIENT)
    # Root on the web host writes a snapshot that claims to be the database host's,
    # into the one repository it can write: its own.
    forged = restic_as_root_on(
        lab,
        WEB1,
        CLIENT,
        "backup",
        "--json",
        "--host",
        "atelier-db1",
        "--tag",
        "webmg",
        "/etc/hostname",
    )
    assert forged.returncode == 0, forged.stderr
    (forged_id,) = [
        json.loads(line)["snapshot_id"]
        for line in forged.stdout.splitlines()
        if '"message_type":"summary"' in line
    ]
    client = load_client(lab.inventories, CLIENT)
    vault_password = Vault(Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]))
    db_repository = host_repository(client, "atelier-db1", vault_password, cache_dir=lab.root / "c")
    db_latest = list_snapshots(db_repository)[-1]
    try:
        _code, report = drill(lab, CLIENT)
        hosts = finished(lab, report["run_id"])["evidence"]["hosts"]
        # The database host's drill restores the database host's own latest snapshot...
        assert hosts["atelier-db1"]["snapshot"] == db_latest.id[:8]
        assert hosts["atelier-db1"]["ok"] is True
        # ...and the forged one is the web host's, where it was written (and fails there).
        assert forged_id.startswith(hosts["atelier-web1"]["snapshot"])
        assert hosts["atelier-web1"]["ok"] is False
    finally:
        # The host cannot forget it (append-only); the controller can.
        web_repository = host_repository(
            client, "atelier-web1", vault_password, cache_dir=lab.root / "c"
        )
        run_restic(web_repository, ["forget", forged_id], command="forget")


@contextlib.contextmanager
def damaged_pack(lab: Lab, pack: str, damage: str) -> Iterator[str]:
    """Within the block, PACK (a path on backup1) is damaged; every byte is put back after.

    ``damage`` is a shell command run on the pack's path (``$pack``).
    """
    on_backup1(lab, f"cp -p {pack} /root/pack.saved")
    try:
        on_backup1(lab, f"pack={pack}; {damage}")
        yield pack
    finally:
        on_backup1(lab, f"cp -p /root/pack.saved {pack} && rm /root/pack.saved")


def largest_pack(lab: Lab, client: str) -> str:
    """The path on backup1 of the largest pack file of CLIENT's hosts' repositories."""
    root = f"/srv/restic/{client}"
    return on_backup1(
        lab, f"find {root} -path '*/data/*' -type f -printf '%s %p\\n' | sort -n | tail -1"
    ).split()[1]


def blob_restored_by_the_next_drill(lab: Lab, client: str) -> tuple[str, int]:
    """Back up a fresh file of random bytes on CLIENT's web host; return where its blob lies.

    The result is the blob's pack (a path on backup1) and the offset of a byte
    in the middle of the blob. The file's content exists nowhere else, so the
    blob has no duplicate a restore could read instead, and the latest snapshot
    needs it: damaging that byte must fail the next drill.
    """
    (host,) = [h for h in load_client(lab.inventories, client).hosts if h.name.endswith("web1")]
    path = "/var/lib/webmg-demo/drill-unique.bin"
    # Smaller than restic's smallest chunk, so the whole file is one blob
    # whose ID is the SHA-256 of the file.
    made = lab.ssh(
        host.address,
        f"head -c 65536 /dev/urandom | sudo tee {path} >/dev/null && sudo sha256sum {path}",
    )
    assert made.returncode == 0, made.stderr
    blob_id = made.stdout.split()[0]
    backup = lab.cli("run", client, "backup", "--limit", host.name, "--reason", "unique blob")
    assert backup.returncode == ExitCode.OK, backup.stderr[-2000:]
    repository = host_repository(
        load_client(lab.inventories, client),
        host.name,
        Vault(Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"])),
        cache_dir=lab.root / "c",
    )
    indexes = run_restic(repository, ["list", "index"], command="list").stdout.split()
    for index_id in indexes:
        index = json.loads(run_restic(repository, ["cat", "index", index_id], command="cat").stdout)
        for pack in index["packs"]:
            for blob in pack["blobs"]:
                if blob["id"] == blob_id:
                    where = f"/srv/restic/{client}/{host.name}/data/{pack['id'][:2]}/{pack['id']}"
                    return where, blob["offset"] + blob["length"] // 2
    raise AssertionError(f"blob {blob_id} of {path} is in no index of {host.name}'s repository")


def test_a_flipped_byte_in_a_blob_the_restore_reads_fails_the_drill(lab: Lab) -> None:
    backed_up(lab, DAMAGED)
    pack, offset = blob_restored_by_the_next_drill(lab, DAMAGED)
    flip = f"printf '\\377' | dd of=$pack bs=1 seek={offset} count=1 conv=notrunc status=none"
    with damaged_pack(lab, pack, flip):
        notes, log = failed_drill(lab, DAMAGED)
    assert "restore" in notes, notes
    assert "restore" in log


@pytest.mark.parametrize(
    "damage",
    ["rm $pack", "truncate -s 100 $pack"],
    ids=["deleted-pack", "truncated-pack"],
)
def test_a_damaged_pack_fails_the_drill_and_is_named(lab: Lab, damage: str) -> None:
    backed_up(lab, DAMAGED)
    with damaged_pack(lab, largest_pack(lab, DAMAGED), damage) as pack:
        notes, log = failed_drill(lab, DAMAGED)
    assert "repository check failed" in notes, notes
    assert Path(pack).name[:8] in notes  # the damaged pack is named
    assert "repository check failed" in log


def test_wrong_repository_password_fails_the_drill(lab: Lab, tmp_path: Path) -> None:
    backed_up(lab, DAMAGED)
    vault = lab.inventories / DAMAGED / "group_vars" / "all" / "vault.yml"
    saved = tmp_path / "vault.yml"
    shutil.copy2(vault, saved)
    plain = tmp_path / "plain.yml"
    plain.write_text("webmg_restic_password: not-the-repository-password\n")
    subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            lab.env["WEBMG_VAULT_PASSWORD_FILE"],
            "--output",
            str(vault),
            str(plain),
        ],
        check=True,
        capture_output=True,
    )
    try:
        code, report = drill(lab, DAMAGED)
    finally:
        shutil.copy2(saved, vault)
    assert code == ExitCode.FAILED, report
    notes = " ".join(host["note"] for host in finished(lab, report["run_id"])["hosts"])
    assert "wrong password" in notes
    assert "not-the-repository-password" not in json.dumps(lab.entries(client=DAMAGED)[-1].payload)


def test_silent_corruption_of_a_restored_file_is_named_file_by_file(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from webmg_ops.actions import drill as drill_action
    from webmg_ops.backups.restore import run_drill
    from webmg_ops.cli.main import main

    backed_up(lab, CLIENT)

    def corrupting(*args: Any, **kwargs: Any) -> Any:
        def corrupt(restored: Path) -> None:
            hostname = restored / "etc" / "hostname"
            hostname.write_text(hostname.read_text().upper())

        return run_drill(*args, before_verify=corrupt, **kwargs)

    monkeypatch.setattr(drill_action, "run_drill", corrupting)
    for name in ("WEBMG_VAR", "WEBMG_VAULT_PASSWORD_FILE"):
        monkeypatch.setenv(name, lab.env[name])
    settings = lab.settings
    with pytest.raises(SystemExit) as done:
        main(
            [
                "--inventories",
                str(settings.inventories),
                "--ledger",
                settings.ledger_url,
                "drill",
                CLIENT,
                "--json",
            ]
        )
    assert done.value.code == ExitCode.FAILED
    report = json.loads(capsys.readouterr().out)
    hosts = finished(lab, report["run_id"])["evidence"]["hosts"]
    addresses = {"atelier-web1": WEB1, "atelier-db1": "198.18.0.42"}
    assert set(hosts) == set(addresses)
    for name, item in hosts.items():
        # What the backup saw (the live file, unchanged since) and what the drill restored.
        live = lab.ssh(addresses[name], "cat /etc/hostname")
        assert live.returncode == 0, live.stderr
        assert item["mismatches"] == [
            {
                "path": "/etc/hostname",
                "kind": "content differs",
                "expected": hashlib.sha256(live.stdout.encode()).hexdigest()[:16],
                "found": hashlib.sha256(live.stdout.upper().encode()).hexdigest()[:16],
            }
        ]
        assert item["failures"][0].startswith("/etc/hostname: content differs")


def test_drills_due_runs_exactly_the_clients_whose_cadence_elapsed(
    lab: Lab, tmp_path: Path
) -> None:
    backed_up(lab, CLIENT)
    code, _report = drill(lab, CLIENT)
    assert code == ExitCode.OK
    # Two clients: atelier-nord was just drilled, terre-solidaire never was; the agency's
    # folder (its backup target, no repository of its own) has nothing to drill.
    inventories = tmp_path / "inventories"
    for name in (CLIENT, "terre-solidaire", "agency"):
        shutil.copytree(lab.inventories / name, inventories / name)
    env = {**lab.env, "WEBMG_INVENTORIES": str(inventories)}
    listed = subprocess.run(
        [sys.executable, "-m", "webmg_ops.cli.main", "drills-due", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == ExitCode.OK, listed.stderr
    assert {row["client"]: row["due"] for row in json.loads(listed.stdout)} == {
        CLIENT: False,
        "terre-solidaire": True,
    }
    ran = subprocess.run(
        [sys.executable, "-m", "webmg_ops.cli.main", "drills-due", "--run", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    results = json.loads(ran.stdout)
    assert [row["client"] for row in results] == ["terre-solidaire"]
    expected = ExitCode.OK if results[0]["outcome"] == "succeeded" else ExitCode.FAILED
    assert ran.returncode == expected, ran.stderr
