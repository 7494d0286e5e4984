"""The backup action's planning and the role's manifest script, without the lab.

Retention is proven with the real restic binary on a local repository:
snapshots on simulated days (restic ``--time``), then ``forget`` with the
arguments the action derives from a level's retention, against an
expectation computed here independently.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.restic import RESTIC_PASSWORD

from webmg_ops.actions.backup import (
    check_subset,
    combined_repository_evidence,
    forget_arguments,
    full_snapshot_id,
    maintenance_plan,
    make_extra_vars,
)
from webmg_ops.actions.drill import choose_snapshots
from webmg_ops.actions.target import make_extra_vars as target_extra_vars
from webmg_ops.actions.target import plan_target
from webmg_ops.backups.maintenance import (
    MaintenancePlan,
    maintain_repository,
    repository_evidence,
)
from webmg_ops.backups.manifest import build_manifest
from webmg_ops.backups.repository import host_password
from webmg_ops.backups.restic import (
    Repository,
    ResticError,
    ResticFailure,
    Snapshot,
    backup,
    forget,
    init_repository,
    list_snapshots,
)
from webmg_ops.config.clients import AGENCY, ContractInvalid, load_client
from webmg_ops.config.contract import Level, Retention
from webmg_ops.config.policy import LEVEL_DEFAULTS
from webmg_ops.config.repository_location import (
    S3Location,
    SftpLocation,
    host_repository_location,
    parse_repository_location,
)
from webmg_ops.errors import BadInput
from webmg_ops.runs.records import RunRequest

MANIFEST_SCRIPT = (
    Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "webmg_manifest.py"
)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def test_extra_vars_come_from_the_contract_and_the_policy(inventories: Path) -> None:
    client = load_client(inventories, "atelier-nord")
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    extra = make_extra_vars(client, ("atelier-web1",), RunRequest("atelier-nord", "backup"), now)
    assert extra["backup_client"] == "atelier-nord"
    assert (
        extra["backup_repository"] == "sftp:restic-atelier-nord@198.18.0.5:/srv/restic/atelier-nord"
    )
    assert extra["backup_paths"] == ["/etc", "/var/lib/webmg-demo"]
    assert extra["backup_databases"] == [
        {"name": "demo", "engine": "postgresql", "host_group": "db"}
    ]
    assert not any("password" in name for name in extra)
    # Retention and checks are the controller's: nothing of them reaches the hosts.
    assert not any("retention" in name or "forget" in name or "check" in name for name in extra)


def test_the_controller_plan_comes_from_the_policy(inventories: Path) -> None:
    client = load_client(inventories, "atelier-nord")
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    plan = maintenance_plan(client, now)
    # stability-security: keep 7 daily and 4 weekly; a daily backup, a quarterly drill.
    assert plan.forget_arguments == (
        "--keep-daily", "7", "--keep-weekly", "4", "--group-by", "host", "--tag", "webmg",
    )  # fmt: skip
    day_number = int(now.timestamp() // 86400)
    assert plan.check_subset == f"{day_number % 91 + 1}/91"


def test_a_run_cannot_set_what_the_contract_decides(inventories: Path) -> None:
    client = load_client(inventories, "atelier-nord")
    request = RunRequest("atelier-nord", "backup", extra_vars={"backup_paths": ["/"]})
    with pytest.raises(BadInput, match="backup_paths come from the contract"):
        make_extra_vars(client, (), request)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sftp:restic@198.18.0.5:/srv/restic/x",
            SftpLocation("restic", "198.18.0.5", "/srv/restic/x"),
        ),
        (
            "s3:http://198.18.0.1:9000/webmg-backups",
            S3Location("http://198.18.0.1:9000", "webmg-backups"),
        ),
        (
            "s3:https://s3.example.net/webmg-backups/clients/x/",
            S3Location("https://s3.example.net", "webmg-backups", "clients/x"),
        ),
    ],
)
def test_repository_locations_are_read_into_their_parts(
    text: str, expected: SftpLocation | S3Location
) -> None:
    assert parse_repository_location(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/srv/x", "expected sftp:USER@HOST:/PATH or s3:http(s)://HOST[:PORT]/BUCKET"),
        ("s3:s3.example.net/bucket", "expected sftp:USER@HOST:/PATH"),
        ("s3:https://s3.example.net/Bucket_Name", "expected sftp:USER@HOST:/PATH"),
        ("s3:https://AKID:canarysecret@s3.example.net/bucket", "carries no credentials"),
        ("s3:http://s3.example.net/webmg-backups", "plain http is accepted only on loopback"),
    ],
    ids=["local-path", "no-scheme", "bad-bucket", "credentials", "plain-http"],
)
def test_a_repository_restic_cannot_reach_is_a_contract_error(
    inventories: Path, edit_contract, text: str, message: str
) -> None:
    edit_contract("atelier-nord", lambda data: data["backup"].update(repository=text))
    with pytest.raises(ContractInvalid) as caught:
        load_client(inventories, "atelier-nord")
    assert "backup.repository" in str(caught.value)
    assert message in str(caught.value)
    assert "canarysecret" not in str(caught.value)  # a location with keys is never echoed


def test_an_s3_repository_goes_to_the_play_as_the_contract_names_it(
    inventories: Path, edit_contract
) -> None:
    location = "s3:http://198.18.0.1:9000/webmg-backups/atelier-nord"
    edit_contract("atelier-nord", lambda data: data["backup"].update(repository=location))
    client = load_client(inventories, "atelier-nord")
    extra = make_extra_vars(client, (), RunRequest("atelier-nord", "backup"))
    assert extra["backup_repository"] == location
    assert not any("s3" in name or "key" in name for name in extra)


def test_check_subsets_rotate_through_every_pack_within_the_drill_cadence() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # institutional-sla: a backup every 6 h, a weekly drill: 28 subsets.
    seen = [check_subset(6 * HOUR, 7 * DAY, start + n * 6 * HOUR) for n in range(28)]
    assert {item.split("/")[1] for item in seen} == {"28"}
    assert sorted(int(item.split("/")[0]) for item in seen) == list(range(1, 29))
    # Consecutive backups read consecutive subsets; the same slot reads the same subset.
    first = int(seen[0].split("/")[0])
    assert int(seen[1].split("/")[0]) == first % 28 + 1
    assert check_subset(6 * HOUR, 7 * DAY, start + HOUR) == seen[0]
    # A drill cadence that is not a multiple of the backup cadence rounds up.
    assert check_subset(DAY, 91 * DAY, start).endswith("/91")
    assert check_subset(12 * HOUR, 91 * DAY, start).endswith("/182")
    assert check_subset(None, 7 * DAY, start) == "1/1"


def test_a_retention_that_keeps_nothing_is_refused() -> None:
    with pytest.raises(BadInput, match="keeps no snapshot"):
        forget_arguments(Retention())


def test_a_short_snapshot_id_is_resolved_to_the_full_one() -> None:
    full = ["ab" * 32, "cd" * 32]
    assert full_snapshot_id("cdcdcdcd", full) == "cd" * 32
    assert full_snapshot_id("ef012345", full) == "ef012345"
    assert full_snapshot_id(None, full) is None


def test_the_role_manifest_script_matches_the_controller_manifest(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc" / "deep").mkdir(parents=True)
    (tree / "etc" / "a.conf").write_text("alpha\n")
    (tree / "etc" / "deep" / "big.bin").write_bytes(bytes(range(256)) * 20_000)  # > 1 chunk
    (tree / "etc" / "empty").write_bytes(b"")
    (tree / "etc" / "link").symlink_to(tree / "etc" / "a.conf")
    (tree / "db.dump").write_bytes(b"PGDMP dump")
    databases = [{"name": "demo", "engine": "postgresql", "dump": str(tree / "db.dump"),
                  "row_counts": {"demo.bookings": 250}}]  # fmt: skip
    output = tmp_path / "out" / "manifest.json"
    output.parent.mkdir()
    done = subprocess.run(
        [sys.executable, str(MANIFEST_SCRIPT), "--output", str(output), "--host", "web1",
         "--databases", json.dumps(databases), str(tree / "etc"), str(tree / "db.dump")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    written = json.loads(output.read_text())
    expected = build_manifest([tree / "etc", tree / "db.dump"], host="web1")
    assert written["files"] == expected["files"]
    assert written["version"] == expected["version"] == 1
    assert written["paths"] == expected["paths"]
    assert written["host"] == "web1"
    assert written["databases"] == databases
    assert str(tree / "etc" / "link") not in written["files"]
    assert output.stat().st_mode & 0o777 == 0o600
    assert json.loads(done.stdout)["files"] == len(expected["files"]) == 4


def test_the_manifest_script_leaves_out_excluded_paths_and_itself(tmp_path: Path) -> None:
    (tmp_path / "data" / "secret").mkdir(parents=True)
    (tmp_path / "data" / "secret" / "key").write_text("k")
    (tmp_path / "data" / "kept").write_text("x")
    output = tmp_path / "data" / "manifest.json"
    output.write_text("{}")
    subprocess.run(
        [sys.executable, str(MANIFEST_SCRIPT), "--output", str(output),
         "--exclude", str(tmp_path / "data" / "secret"), str(tmp_path / "data")],
        check=True, capture_output=True,
    )  # fmt: skip
    assert list(json.loads(output.read_text())["files"]) == [str(tmp_path / "data" / "kept")]


def expected_kept(times: list[datetime], retention: Retention) -> set[datetime]:
    """Return the times whose snapshot a retention keeps (one snapshot a time).

    Each rule keeps the newest snapshot of each of its last N periods, counted
    independently; a snapshot kept by any rule is kept.
    """
    periods = {
        "hourly": lambda time: (time.date(), time.hour),
        "daily": lambda time: time.date(),
        "weekly": lambda time: time.isocalendar()[:2],
        "monthly": lambda time: (time.year, time.month),
        "yearly": lambda time: time.year,
    }
    kept: set[datetime] = set()
    for name, period_of in periods.items():
        wanted = getattr(retention, name)
        seen: list[object] = []
        for time in sorted(times, reverse=True):
            period = period_of(time)
            if period in seen:
                continue
            if len(seen) == wanted:
                break
            seen.append(period)
            kept.add(time)
    return kept


FIRST_DAY = date(2025, 11, 3)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(40)]


@pytest.fixture(scope="module")
def forty_days(tmp_path_factory: pytest.TempPathFactory, empty_restic_repository: Path) -> Path:
    """One repository holding a daily snapshot of host web1 for 40 days, copied by each test."""
    folder = tmp_path_factory.mktemp("forty-days")
    shutil.copytree(empty_restic_repository, folder / "repo")
    repository = Repository(str(folder / "repo"), password=RESTIC_PASSWORD, cache_dir=folder / "c")
    source = folder / "data"
    source.mkdir()
    for day in DAYS:
        (source / "day.txt").write_text(day.isoformat())
        backup(repository, [source], tags=["webmg"], host="web1",
               at=datetime(day.year, day.month, day.day, 12, 0))  # fmt: skip
    # A snapshot without the tag is never touched by the action's forget.
    backup(repository, [source], host="web1", at=datetime(2025, 1, 1, 12, 0))
    return folder / "repo"


@pytest.mark.parametrize(
    "level", [Level.STABILITY_SECURITY, Level.CONTINUOUS_EVOLUTION, Level.INSTITUTIONAL_SLA]
)
def test_forget_with_the_derived_arguments_keeps_exactly_the_retention(
    forty_days: Path, tmp_path: Path, level: Level
) -> None:
    retention: Retention = LEVEL_DEFAULTS[level]["backup.retention"]
    shutil.copytree(forty_days, tmp_path / "repo")
    repository = Repository(
        str(tmp_path / "repo"), password=RESTIC_PASSWORD, cache_dir=tmp_path / "c"
    )
    result = forget(repository, arguments=forget_arguments(retention))
    remaining = list_snapshots(repository)
    kept_days = {snapshot.time.date() for snapshot in remaining if "webmg" in snapshot.tags}
    noons = [datetime(day.year, day.month, day.day, 12, 0) for day in DAYS]
    assert kept_days == {time.date() for time in expected_kept(noons, retention)}
    assert len(result.kept) == len(kept_days)
    assert len(result.removed) == len(DAYS) - len(kept_days)
    assert any("webmg" not in snapshot.tags for snapshot in remaining)


@pytest.mark.tools
def test_six_hourly_restore_points_of_the_last_two_days_are_kept(
    empty_restic_repository: Path, tmp_path: Path
) -> None:
    """institutional-sla backs up every 6 hours: its retention keeps each of the last
    8 of those, then one a day, rather than collapsing today's to the newest."""
    retention: Retention = LEVEL_DEFAULTS[Level.INSTITUTIONAL_SLA]["backup.retention"]
    shutil.copytree(empty_restic_repository, tmp_path / "repo")
    repository = Repository(
        str(tmp_path / "repo"), password=RESTIC_PASSWORD, cache_dir=tmp_path / "c"
    )
    source = tmp_path / "data"
    source.mkdir()
    times = [datetime(2025, 11, 3, 0, 0) + n * 6 * HOUR for n in range(16)]  # four days
    for time in times:
        (source / "at.txt").write_text(time.isoformat())
        backup(repository, [source], tags=["webmg"], host="web1", at=time)
    forget(repository, arguments=forget_arguments(retention))
    kept = {s.time.astimezone().replace(tzinfo=None) for s in list_snapshots(repository)}
    assert kept == expected_kept(times, retention)
    # The last two days whole (8 restore points), and the last one of each day before.
    assert kept == set(times[-8:]) | {times[3], times[7]}


TIMER_SCRIPT = MANIFEST_SCRIPT.with_name("webmg_timer_backup.py")


def _timer_settings(tmp_path: Path, repository: Repository, password: str) -> Path:
    """Write the settings the role gives the timer, for a local repository opened with
    PASSWORD (from a file, as on the hosts); return them."""
    password_file = tmp_path / "password"
    password_file.write_text(password)
    data = tmp_path / "data"
    data.mkdir()
    (data / "page.html").write_text("<h1>bookings</h1>")
    work = tmp_path / "work"
    (work / "db").mkdir(parents=True)
    settings = {
        "host": "web1",
        "paths": [str(data), str(tmp_path / "absent")],
        "excluded": [],
        "databases": [],
        "dump_dir": str(work / "db"),
        "manifest_file": str(work / "manifest.json"),
        "work_dir": str(work),
        "restic_argv": ["restic", "--quiet"],
        "environment": {
            "RESTIC_REPOSITORY": repository.location,
            "RESTIC_PASSWORD_FILE": str(password_file),
            "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
        },
        "tags": ["webmg", "webmg-timer"],
        "runs_log": str(tmp_path / "timer-runs.jsonl"),
        "hold_file": str(tmp_path / "run-in-progress"),
        "hold_max_age_s": 7200,
    }
    file = tmp_path / "timer.json"
    file.write_text(json.dumps(settings))
    return file


def _timer(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TIMER_SCRIPT), *arguments], capture_output=True, text=True
    )


@pytest.mark.tools
def test_a_timer_backup_is_a_tagged_snapshot_with_its_manifest_and_a_record(
    repository: Repository, tmp_path: Path
) -> None:
    settings = _timer_settings(tmp_path, repository, str(repository.password))
    done = _timer(str(settings))
    assert done.returncode == 0, done.stderr
    (snapshot,) = list_snapshots(repository)
    assert snapshot.hostname == "web1"
    assert set(snapshot.tags) == {"webmg", "webmg-timer"}
    manifest = json.loads((tmp_path / "work" / "manifest.json").read_text())
    assert list(manifest["files"]) == [str(tmp_path / "data" / "page.html")]
    # The record waits in the log until the next backup run collects it, once.
    collected = _timer("--collect", str(tmp_path / "timer-runs.jsonl"))
    (run,) = json.loads(collected.stdout)
    assert run["ok"] is True and snapshot.id.startswith(run["snapshot_id"])
    assert json.loads(_timer("--collect", str(tmp_path / "timer-runs.jsonl")).stdout) == []
    assert len((tmp_path / "timer-runs.jsonl.recorded").read_text().splitlines()) == 1


@pytest.mark.tools
def test_a_failed_timer_backup_exits_1_and_is_recorded_with_its_cause(
    repository: Repository, tmp_path: Path
) -> None:
    done = _timer(str(_timer_settings(tmp_path, repository, "not the password")))
    assert done.returncode == 1
    assert "restic backup" in done.stderr
    (run,) = json.loads(_timer("--collect", str(tmp_path / "timer-runs.jsonl")).stdout)
    assert run["ok"] is False and "wrong password" in run["error"]
    assert list_snapshots(repository) == []


def test_the_contract_timer_goes_to_the_play_and_nothing_but_a_schedule_passes(
    inventories: Path, edit_contract
) -> None:
    edit_contract("atelier-nord", lambda data: data["backup"].update(timer="*-*-* 02:30:00"))
    client = load_client(inventories, "atelier-nord")
    extra = make_extra_vars(client, (), RunRequest("atelier-nord", "backup"))
    assert extra["backup_timer"] == "*-*-* 02:30:00"
    edit_contract("atelier-nord", lambda data: data["backup"].update(timer="daily; reboot"))
    with pytest.raises(ContractInvalid, match=r"backup\.timer"):
        load_client(inventories, "atelier-nord")


@pytest.mark.tools
def test_a_timer_backup_skips_while_a_run_holds_the_host_and_says_so(
    repository: Repository, tmp_path: Path
) -> None:
    settings = _timer_settings(tmp_path, repository, str(repository.password))
    (tmp_path / "run-in-progress").write_text("atelier-nord backup run\n")
    assert _timer(str(settings)).returncode == 0
    (run,) = json.loads(_timer("--collect", str(tmp_path / "timer-runs.jsonl")).stdout)
    assert run["skipped"] is True and run["ok"] is False
    assert list_snapshots(repository) == []
    # A hold left by a run that died long ago no longer stops the timer.
    os.utime(tmp_path / "run-in-progress", (0, 0))
    assert _timer(str(settings)).returncode == 0
    assert len(list_snapshots(repository)) == 1


# --- one repository and one password per host -----------------------------

ROLE_FILTERS = (
    Path(__file__).resolve().parents[2] / "roles" / "backup" / "filter_plugins" / "webmg_backup.py"
)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            "sftp:restic-atelier-nord@198.18.0.5:/srv/restic/atelier-nord",
            "sftp:restic-atelier-nord@198.18.0.5:/srv/restic/atelier-nord/atelier-web1",
        ),
        (
            "sftp:restic-atelier-nord@198.18.0.5:/srv/restic/atelier-nord/",
            "sftp:restic-atelier-nord@198.18.0.5:/srv/restic/atelier-nord/atelier-web1",
        ),
        ("s3:http://198.18.0.1:9000/backups", "s3:http://198.18.0.1:9000/backups/atelier-web1"),
        (
            "s3:http://198.18.0.1:9000/backups/acme",
            "s3:http://198.18.0.1:9000/backups/acme/atelier-web1",
        ),
    ],
)
def test_each_host_has_its_own_repository_inside_the_clients_location(
    location: str, expected: str
) -> None:
    assert host_repository_location(location, "atelier-web1") == expected


@pytest.mark.parametrize("host", ["../atelier-db1", "web/../../db", ".hidden", "", "a b"])
def test_a_host_name_that_could_leave_its_folder_names_no_repository(host: str) -> None:
    with pytest.raises(ValueError, match="cannot name a repository folder"):
        host_repository_location("sftp:restic@198.18.0.5:/srv/restic/acme", host)


def _role_filter() -> Any:
    spec = importlib.util.spec_from_file_location("webmg_backup_filters", ROLE_FILTERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()["webmg_host_restic_password"]


def test_the_role_and_the_controller_derive_the_same_password_per_host() -> None:
    derive = _role_filter()
    client_password = "client-password-" + os.urandom(8).hex()
    hosts = ("atelier-web1", "atelier-db1")
    # HMAC-SHA256 of the host's name, keyed with the client's password, computed here.
    expected = {
        host: hmac.new(
            client_password.encode(),
            b"webmg-ops restic repository of host " + host.encode(),
            hashlib.sha256,
        ).hexdigest()
        for host in hosts
    }
    assert {host: derive(client_password, host) for host in hosts} == expected
    assert {host: host_password(client_password, host) for host in hosts} == expected
    assert len(set(expected.values())) == len(hosts)
    assert client_password not in expected.values()


@pytest.mark.tools
def test_one_hosts_password_does_not_open_another_hosts_repository(tmp_path: Path) -> None:
    client_password = "client-password-" + os.urandom(8).hex()
    repositories = {
        host: Repository(
            location=str(tmp_path / host),
            password=host_password(client_password, host),
            cache_dir=tmp_path / "cache",
        )
        for host in ("atelier-web1", "atelier-db1")
    }
    for repository in repositories.values():
        init_repository(repository)
    source = tmp_path / "data"
    source.mkdir()
    (source / "dump.sql").write_text("bookings 250\n")
    backup(repositories["atelier-db1"], [source])
    # The web host's password against the database host's repository: refused.
    stolen = replace(repositories["atelier-db1"], password=repositories["atelier-web1"].password)
    with pytest.raises(ResticError) as refused:
        list_snapshots(stolen)
    assert refused.value.failure is ResticFailure.WRONG_PASSWORD
    assert len(list_snapshots(repositories["atelier-db1"])) == 1


def _snapshot(short_id: str, hostname: str, day: int) -> Snapshot:
    return Snapshot(
        id=short_id * 8,
        short_id=short_id,
        time=datetime(2026, 1, day, tzinfo=UTC),
        hostname=hostname,
        paths=("/etc",),
        tags=("webmg",),
    )


def test_a_drill_takes_each_hosts_latest_snapshot_from_its_repository_whatever_its_label() -> None:
    own = _snapshot("aaaaaaaa", "atelier-db1", 1)
    forged = _snapshot("bbbbbbbb", "atelier-db1", 2)  # written by the web host, newer
    chosen = choose_snapshots({"atelier-db1": [own], "atelier-web1": [forged]}, None)
    assert chosen == {"atelier-db1": own, "atelier-web1": forged}
    assert choose_snapshots({"atelier-db1": [own], "atelier-web1": [forged]}, "bbbb") == {
        "atelier-web1": forged
    }
    with pytest.raises(BadInput, match="no snapshot 'cccc'"):
        choose_snapshots({"atelier-db1": [own]}, "cccc")


def test_the_hosts_repository_evidence_adds_up_to_the_clients() -> None:
    plan = MaintenancePlan(("--keep-daily", "7"), "1/4")
    combined = combined_repository_evidence(
        {
            "atelier-web1": repository_evidence(
                plan, initialized=False, errors=[], kept=("w1", "w2"), removed=("old",),
                ok=True, duration_s=2.5,
            ),
            "atelier-db1": repository_evidence(
                plan, initialized=True, errors=["pack 1234 damaged"], kept=("d1",),
                removed=("old",), duration_s=4.0,
            ),
        }
    )  # fmt: skip
    assert combined is not None
    assert combined["initialized"] is True
    assert combined["forget"]["kept"] == 3 and combined["forget"]["removed"] == 2
    assert combined["check"] == {
        "ok": False,
        "subset": "1/4",
        "duration_s": 4.0,
        "errors": ["atelier-db1: pack 1234 damaged"],
    }
    assert combined_repository_evidence({}) is None


@pytest.mark.tools
def test_the_controller_applies_the_retention_and_checks_a_real_repository(
    forty_days: Path, tmp_path: Path
) -> None:
    retention: Retention = LEVEL_DEFAULTS[Level.STABILITY_SECURITY]["backup.retention"]
    shutil.copytree(forty_days, tmp_path / "repo")
    repository = Repository(
        str(tmp_path / "repo"), password=RESTIC_PASSWORD, cache_dir=tmp_path / "c"
    )
    before = {snapshot.id for snapshot in list_snapshots(repository)}
    plan = MaintenancePlan(tuple(forget_arguments(retention)), "1/1")
    evidence = maintain_repository(repository, plan)
    after = {snapshot.id for snapshot in list_snapshots(repository)}
    assert evidence["check"] == {"ok": True, "subset": "1/1", "errors": [],
                                 "duration_s": evidence["check"]["duration_s"]}  # fmt: skip
    assert set(evidence["forget"]["removed_ids"]) == before - after
    assert set(evidence["forget"]["kept_ids"]) <= after
    assert evidence["forget"]["removed"] == len(before - after) > 0


@pytest.mark.tools
def test_a_repository_the_controller_cannot_open_is_a_failed_check_not_a_crash(
    forty_days: Path, tmp_path: Path
) -> None:
    repository = Repository(str(forty_days), password="not the password", cache_dir=tmp_path)
    plan = MaintenancePlan(("--keep-daily", "7"), "")
    evidence = maintain_repository(repository, plan, attempts=1, delay_s=0)
    assert evidence["check"]["ok"] is False
    assert evidence["forget"]["removed"] == 0
    assert [error.split(":")[0] for error in evidence["check"]["errors"]] == [
        "retention not applied",
        "check not run",
    ]
    assert all("wrong password" in error for error in evidence["check"]["errors"])


# --- what reaches the backup target's authorized_keys ----------------------

TARGET_DEFAULTS = (
    Path(__file__).resolve().parents[2] / "roles" / "backup_target" / "defaults" / "main.yml"
)


def _key_pattern() -> re.Pattern[str]:
    # Ansible's ``match`` test is re.match.
    return re.compile(yaml.safe_load(TARGET_DEFAULTS.read_text())["backup_target_key_pattern"])


def _generated_key(folder: Path, name: str = "id_ed25519") -> tuple[Path, str]:
    """Generate an ed25519 key in FOLDER; return its private file and ``type base64``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", str(key)], check=True
    )
    return key, " ".join(key.with_suffix(".pub").read_text().split()[:2])


def test_a_real_host_key_is_what_the_target_role_accepts(tmp_path: Path) -> None:
    _, public = _generated_key(tmp_path)
    assert _key_pattern().match(public) is not None


@pytest.mark.parametrize(
    "forged",
    [
        # A second line: an unrestricted key of the attacker's.
        "{key}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIattackerattackerattackerattackerattack",
        "{key}\n",
        "{key}\r\nssh-ed25519 {b64}",
        # Options or a comment of its own, around the key.
        'command="/bin/sh" {key}',
        'no-pty,permitopen="*:*" {key}',
        "{key} comment",
        # Another key type, or a key cut short or made longer.
        "ssh-rsa {b64}",
        "{key}AAAA",
        "ssh-ed25519 {b64short}",
        "",
    ],
)
def test_a_forged_key_is_refused_before_the_target(tmp_path: Path, forged: str) -> None:
    _, key = _generated_key(tmp_path)
    b64 = key.split()[1]
    text = forged.format(key=key, b64=b64, b64short=b64[:-4])
    assert _key_pattern().match(text) is None


def test_the_target_plan_takes_each_hosts_key_from_the_enrolled_known_hosts(
    inventories: Path, edit_contract
) -> None:
    # atelier-nord: the controller's key, one host enrolled plainly, the other hashed.
    folder = inventories / "atelier-nord"
    _, controller = _generated_key(folder / "ssh")
    _, web = _generated_key(inventories.parent / "keys", "web")
    _, db = _generated_key(inventories.parent / "keys", "db")
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"198.18.0.42 {db}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known_hosts)], check=True)
    known_hosts.write_text(known_hosts.read_text() + f"198.18.0.41 {web}\n")
    assert "198.18.0.42" not in known_hosts.read_text()
    # alpenhof claims atelier-nord's folder; riverton's hosts are not enrolled at all.
    _generated_key(inventories / "alpenhof" / "ssh")
    _generated_key(inventories / "riverton" / "ssh")
    edit_contract(
        "alpenhof",
        lambda data: data["backup"].update(
            repository="sftp:restic-alpenhof@198.18.0.5:/srv/restic/atelier-nord"
        ),
    )
    plan = plan_target(load_client(inventories, AGENCY))
    planned = {item.client: item for item in plan.clients}
    assert set(planned) == {"atelier-nord", "riverton"}
    atelier = planned["atelier-nord"]
    assert (atelier.target, atelier.account, atelier.path) == (
        "backup1", "restic-atelier-nord", "/srv/restic/atelier-nord",
    )  # fmt: skip
    assert atelier.controller_key == controller
    assert {(host.name, host.key) for host in atelier.hosts} == {
        ("atelier-web1", web),
        ("atelier-db1", db),
    }
    assert planned["riverton"].hosts == ()
    left = {(item.client, item.host) for item in plan.left_out}
    assert ("alpenhof", None) in left
    assert {host for client, host in left if client == "riverton"} == {
        "riverton-web1", "riverton-web2", "riverton-db1",
    }  # fmt: skip
    # terre-solidaire has no controller key here: left out whole, named.
    assert ("terre-solidaire", None) in left
    reasons = {item.client: item.reason for item in plan.left_out if item.host is None}
    assert "sftp:restic-alpenhof@198.18.0.5:/srv/restic/alpenhof" in reasons["alpenhof"]
    assert "no controller key" in reasons["terre-solidaire"]


def test_only_the_agencys_folder_prepares_the_target(inventories: Path) -> None:
    client = load_client(inventories, "atelier-nord")
    with pytest.raises(BadInput, match="run agency target"):
        target_extra_vars(client, ("atelier-web1",), RunRequest("atelier-nord", "target"))


def test_a_client_inventory_naming_the_backup_target_is_refused(inventories: Path) -> None:
    hosts = inventories / "atelier-nord" / "hosts.yml"
    hosts.write_text(
        hosts.read_text()
        + "    backup_target:\n      hosts:\n        backup1:\n          ansible_host: 198.18.0.5\n"
    )
    with pytest.raises(ContractInvalid, match="the backup target is the agency's own"):
        load_client(inventories, "atelier-nord")


# root (and any system account) is refused earlier, by the contract itself:
# tests/config/test_contract_values.py.
@pytest.mark.parametrize("user", ["restic", "restic-alpenhof"], ids=["shared", "another-client"])
def test_a_backup_into_an_account_not_the_clients_own_is_refused(
    inventories: Path, edit_contract, user: str
) -> None:
    location = f"sftp:{user}@198.18.0.5:/srv/restic/atelier-nord"
    edit_contract("atelier-nord", lambda data: data["backup"].update(repository=location))
    client = load_client(inventories, "atelier-nord")
    with pytest.raises(BadInput, match="'restic-atelier-nord'"):
        make_extra_vars(client, ("atelier-web1",), RunRequest("atelier-nord", "backup"))
