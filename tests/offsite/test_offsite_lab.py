"""Offsite copies after a run, on the lab's S3 endpoint: published, or kept pending and retried."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.lab import Lab
from support.open_count import cli_counting_opens

from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import load_client
from webmg_ops.engine.offsite_step import credentials_for
from webmg_ops.errors import ExitCode
from webmg_ops.lab.vault import read_vault_values, write_vault_values
from webmg_ops.offsite.s3 import make_s3_client

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("prepared_target")]

CLIENT = "atelier-nord"
S3_KEYS = ("webmg_s3_access_key_id", "webmg_s3_secret_access_key")


def backup(lab: Lab) -> dict[str, Any]:
    done = lab.cli("run", CLIENT, "backup", "--reason", "offsite", "--json")
    assert done.returncode == ExitCode.OK, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture
def nothing_pending(lab: Lab) -> None:
    """Publish what earlier tests' runs left pending (with the keys every client has), so
    that the test sees its own runs' items alone."""
    published = lab.cli("offsite", "publish")
    assert published.returncode == ExitCode.OK, published.stderr[-2000:]
    assert json.loads(lab.cli("offsite", "pending", "--json").stdout) == []


@pytest.fixture
def vault_without_s3_keys(lab: Lab, nothing_pending: None) -> Iterator[dict[str, Any]]:
    """Within the test (nothing pending before it), the client's vault lacks its S3 keys;
    they come back afterwards."""
    file = lab.inventories / CLIENT / "group_vars" / "all" / "vault.yml"
    password = Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"])
    values = read_vault_values(file, password)
    assert values is not None
    write_vault_values(file, password, {k: v for k, v in values.items() if k not in S3_KEYS})
    try:
        yield values
    finally:
        write_vault_values(file, password, values)


def of_run(lab: Lab, kind: str, run_id: str, offsite: str) -> list[dict[str, Any]]:
    """Return the payloads of ``kind`` entries of the run about one offsite item kind."""
    return [
        e.payload
        for e in lab.entries(kind, CLIENT)
        if e.payload["run_id"] == run_id and e.payload["offsite"] == offsite
    ]


def test_a_backup_is_copied_offsite_and_recorded(lab: Lab, tmp_path: Path) -> None:
    password_file = Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"])
    done, opens = cli_counting_opens(
        lab,
        password_file,
        tmp_path / "opens",
        "run",
        CLIENT,
        "backup",
        "--reason",
        "offsite",
        "--json",
    )
    assert done.returncode == ExitCode.OK, done.stderr[-2000:]
    report = json.loads(done.stdout)
    # The run (backup, repository maintenance, copies, checkpoint) read the vault
    # password file once: every step had the vault handed down.
    assert opens == 1
    assert report["offsite"]["published"] is True, report["offsite"]
    published = of_run(lab, "offsite-published", report["run_id"], "restic-copy")
    evidence = lab.entries("run-finished", CLIENT)[-1].payload["evidence"]
    # One copy per backed-up host, each from that host's own repository.
    assert sorted(item["host"] for item in published) == sorted(evidence["snapshots"])
    copied = {snapshot for item in published for snapshot in item["snapshots"]}
    assert set(evidence["snapshots"].values()) <= copied
    # Each host's copy is a repository of its own under the client's prefix.
    client = load_client(lab.inventories, CLIENT)
    target = client.contract.backup.offsite
    assert target is not None
    s3 = make_s3_client(
        target, credentials_for(client, target, Vault(Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"])))
    )
    copies = 0
    for host in evidence["snapshots"]:
        listed = s3.list_objects_v2(Bucket=target.bucket, Prefix=f"{CLIENT}/{host}/snapshots/")
        assert listed.get("KeyCount", 0) >= 1, host
        copies += listed["KeyCount"]
    assert copies >= len(copied)
    # The engine published the ledger's head after the run, beside the copies.
    assert report["checkpoint"]["published"] is True, report["checkpoint"]
    [checkpoint] = of_run(lab, "offsite-published", report["run_id"], "checkpoint")
    seq, hash_ = checkpoint["checkpoint"].split(":")
    stored = s3.get_object(Bucket=target.bucket, Key=checkpoint["key"])["Body"].read()
    assert (json.loads(stored)["seq"], json.loads(stored)["hash"]) == (int(seq), hash_)
    assert checkpoint["key"] == f"_ledger/checkpoints/{int(seq):012d}-{hash_}.json"
    verified = lab.cli("ledger", "verify", "--against-published")
    assert verified.returncode == ExitCode.OK, verified.stderr[-2000:]
    # The S3 secret never reaches the ledger or the run's files.
    values = read_vault_values(
        lab.inventories / CLIENT / "group_vars" / "all" / "vault.yml",
        Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]),
    )
    assert values is not None
    secret = str(values["webmg_s3_secret_access_key"])
    assert (
        secret.encode() not in Path(lab.settings.ledger_url.removeprefix("sqlite:///")).read_bytes()
    )
    for file in (lab.settings.var_dir / "runs" / report["run_id"]).rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file


def test_a_failed_copy_leaves_the_run_recorded_and_the_copy_pending_until_published(
    lab: Lab, vault_without_s3_keys: dict[str, Any]
) -> None:
    report = backup(lab)
    assert report["outcome"] == "succeeded"
    assert report["offsite"]["published"] is False
    assert report["checkpoint"]["published"] is False
    pending_ids = sorted(report["offsite"]["pending_id"].split(", "))
    unpublished = of_run(lab, "offsite-unpublished", report["run_id"], "restic-copy")
    assert len(unpublished) == len(pending_ids) == 2  # one per backed-up host
    assert all("webmg_s3_access_key_id" in item["reason"] for item in unpublished)
    # The checkpoint waits beside the copies.
    listed = lab.cli("offsite", "pending", "--json")
    waiting = sorted(item["id"] for item in json.loads(listed.stdout))
    assert waiting == sorted([*pending_ids, report["checkpoint"]["pending_id"]])
    # Still no keys: the retry fails and the item stays.
    assert lab.cli("offsite", "publish").returncode == ExitCode.FAILED
    file = lab.inventories / CLIENT / "group_vars" / "all" / "vault.yml"
    write_vault_values(file, Path(lab.env["WEBMG_VAULT_PASSWORD_FILE"]), vault_without_s3_keys)
    published = lab.cli("offsite", "publish")
    assert published.returncode == ExitCode.OK, published.stderr
    assert json.loads(lab.cli("offsite", "pending", "--json").stdout) == []
    republished = of_run(lab, "offsite-published", report["run_id"], "restic-copy")
    assert sorted(item["pending_id"] for item in republished) == pending_ids
    [checkpoint] = of_run(lab, "offsite-published", report["run_id"], "checkpoint")
    assert checkpoint["pending_id"] == report["checkpoint"]["pending_id"]


def test_a_backup_of_one_host_copies_that_hosts_repository_alone(
    lab: Lab, nothing_pending: None
) -> None:
    # The other host's repository may not exist yet (on a new lab it does not): a copy of
    # it would wait in pending for a backup this run never took.
    host = "atelier-web1"
    done = lab.cli("run", CLIENT, "backup", "--reason", "offsite", "--limit", host, "--json")
    assert done.returncode == ExitCode.OK, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert [item["host"] for item in report["hosts"]] == [host]
    assert report["offsite"]["published"] is True, report["offsite"]
    published = of_run(lab, "offsite-published", report["run_id"], "restic-copy")
    assert [item["host"] for item in published] == [host]
    assert of_run(lab, "offsite-unpublished", report["run_id"], "restic-copy") == []
    assert json.loads(lab.cli("offsite", "pending", "--json").stdout) == []
