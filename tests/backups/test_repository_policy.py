"""A host's own S3 key, with the policy webmg-ops prints for it, on an endpoint that enforces it.

restic (the real binary) backs up with the host's key and is refused what
the policy does not grant; the controller's key applies the retention.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from support.moto_s3 import (
    ALLOW_EVERYTHING,
    SETUP_KEY,
    enforce_iam,
    iam_user,
    moto_endpoint,
    s3_client,
)

from webmg_ops.backups.s3_policy import host_key_policy
from webmg_ops.errors import ExitCode

BUCKET = "webmg-backups"
HOSTS = ("web1", "db1")


@dataclass(frozen=True)
class Endpoint:
    url: str
    repository: str
    controller: tuple[str, str]
    hosts: dict[str, tuple[str, str]]


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    """An endpoint enforcing IAM, a versioned bucket, the controller's key (anything) and
    one key per host with the policy of :func:`host_key_policy`."""
    with moto_endpoint("127.0.0.1", tmp_path / "moto.log") as url:
        repository = f"s3:{url}/{BUCKET}/client"
        setup = s3_client(url, SETUP_KEY)
        setup.create_bucket(Bucket=BUCKET)
        setup.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

        controller = iam_user(url, "controller", ALLOW_EVERYTHING)
        hosts = {host: iam_user(url, host, host_key_policy(repository, host)) for host in HOSTS}
        enforce_iam(url)
        yield Endpoint(url, repository, controller, hosts)


def restic_with(
    endpoint: Endpoint, key: tuple[str, str], host: str, tmp_path: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """Run restic on HOST's repository with KEY (each host's password is its own)."""
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "RESTIC_PASSWORD": f"password of {host}",
        "RESTIC_REPOSITORY": f"{endpoint.repository}/{host}",
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
    }
    return subprocess.run(
        ["restic", "--quiet", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_hosts_key_adds_to_its_own_repository_and_nothing_else(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("saved")
    for host in HOSTS:
        key = endpoint.hosts[host]
        for arguments in (("init",), ("backup", str(data)), ("backup", str(data))):
            done = restic_with(endpoint, key, host, tmp_path, *arguments)
            assert done.returncode == 0, (host, arguments, done.stderr)
    web1 = endpoint.hosts["web1"]
    # restic with web1's key may not open db1's repository. (Its forget would retry each
    # refused delete for most of a minute: the deletes are tried through S3 below.)
    other = restic_with(endpoint, web1, "db1", tmp_path, "snapshots")
    assert other.returncode != 0 and "Access Denied" in other.stderr, other.stderr
    controller = s3_client(endpoint.url, endpoint.controller)
    snapshots = controller.list_objects_v2(Bucket=BUCKET, Prefix="client/web1/snapshots/")
    assert len(snapshots["Contents"]) == 2
    # The same key through S3 itself.
    stolen = s3_client(endpoint.url, web1)
    snapshot = snapshots["Contents"][0]["Key"]
    refused: dict[str, Callable[[], Any]] = {
        "delete its snapshot": lambda: stolen.delete_object(Bucket=BUCKET, Key=snapshot),
        "delete its config": lambda: stolen.delete_object(Bucket=BUCKET, Key="client/web1/config"),
        "read db1's config": lambda: stolen.get_object(Bucket=BUCKET, Key="client/db1/config"),
        "write into db1's": lambda: stolen.put_object(
            Bucket=BUCKET, Key="client/db1/snapshots/planted", Body=b"{}"
        ),
        "write beside the repositories": lambda: stolen.put_object(
            Bucket=BUCKET, Key="client/planted", Body=b"{}"
        ),
    }
    for attack, attempt in refused.items():
        with pytest.raises(ClientError) as denied:
            attempt()
        assert denied.value.response["Error"]["Code"] == "AccessDenied", attack
    # The controller's key applies the retention.
    applied = restic_with(
        endpoint, endpoint.controller, "web1", tmp_path, "forget", "--keep-last", "1"
    )
    assert applied.returncode == 0, applied.stderr
    left = controller.list_objects_v2(Bucket=BUCKET, Prefix="client/web1/snapshots/")
    assert len(left["Contents"]) == 1


def test_an_overwrite_leaves_the_snapshot_in_the_buckets_versions(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    key = endpoint.hosts["web1"]
    for arguments in (("init",), ("backup", str(tmp_path))):
        done = restic_with(endpoint, key, "web1", tmp_path, *arguments)
        assert done.returncode == 0, done.stderr
    stolen = s3_client(endpoint.url, key)
    controller = s3_client(endpoint.url, endpoint.controller)
    (listed,) = stolen.list_objects_v2(Bucket=BUCKET, Prefix="client/web1/snapshots/")["Contents"]
    original = controller.get_object(Bucket=BUCKET, Key=listed["Key"])["Body"].read()
    (version,) = controller.list_object_versions(Bucket=BUCKET, Prefix=listed["Key"])["Versions"]
    stolen.put_object(Bucket=BUCKET, Key=listed["Key"], Body=b"rewritten")
    with pytest.raises(ClientError) as denied:
        stolen.delete_object(Bucket=BUCKET, Key=listed["Key"], VersionId=version["VersionId"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    kept = controller.get_object(Bucket=BUCKET, Key=listed["Key"], VersionId=version["VersionId"])
    assert kept["Body"].read() == original
    # The controller's check finds the rewritten snapshot.
    check = restic_with(endpoint, endpoint.controller, "web1", tmp_path, "check")
    assert check.returncode != 0


def test_the_policy_names_the_hosts_own_prefix_and_only_locks_to_delete() -> None:
    policy = host_key_policy("s3:https://s3.example.net/backups/agency/client/", "web1")
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert by_sid["ReadAndAddToItsOwnRepository"]["Resource"] == (
        "arn:aws:s3:::backups/agency/client/web1/*"
    )
    assert by_sid["ReleaseItsOwnLocks"] == {
        "Sid": "ReleaseItsOwnLocks",
        "Effect": "Allow",
        "Action": "s3:DeleteObject",
        "Resource": "arn:aws:s3:::backups/agency/client/web1/locks/*",
    }
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    granted = {
        action
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert not {action for action in granted if "Delete" in action} - {"s3:DeleteObject"}
    assert "s3:*" not in granted and "s3:DeleteObjectVersion" not in granted
    # No prefix: the host's repository is at the bucket's top.
    top = host_key_policy("s3:https://s3.example.net/backups", "db1")
    assert top["Statement"][1]["Resource"] == "arn:aws:s3:::backups/db1/*"


@pytest.mark.parametrize(
    ("repository", "host", "expected"),
    [
        ("sftp:restic-acme@198.18.0.5:/srv/restic/acme", "web1", "is not on S3"),
        ("s3:https://s3.example.net/backups", "../web1", "cannot name a repository"),
        ("s3:https://s3.example.net/Not_A_Bucket", "web1", "bucket name"),
    ],
)
def test_a_policy_is_only_made_for_an_s3_repository_and_a_plain_host_name(
    repository: str, host: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        host_key_policy(repository, host)


def test_s3_policies_prints_each_hosts_policy_or_says_why_not(
    cli: Callable[..., Any],
    inventories: Path,
    edit_contract: Callable[[str, Callable[[dict[str, Any]], None]], Path],
) -> None:
    bucket = "s3:https://s3.example.net/backups/alpenhof"
    edit_contract("alpenhof", lambda data: data["backup"].update(repository=bucket))
    done = cli("s3-policies", "alpenhof")
    assert done.code == ExitCode.OK, done.err
    printed = json.loads(done.out)
    hosts = yaml.safe_load((inventories / "alpenhof" / "hosts.yml").read_text())
    named = {
        host for group in hosts["all"]["children"].values() for host in (group.get("hosts") or {})
    }
    assert set(printed) == named and named
    for host, policy in printed.items():
        assert policy == host_key_policy(bucket, host)
    edit_contract(
        "alpenhof",
        lambda data: data["backup"].update(
            repository="sftp:restic-alpenhof@198.18.0.5:/srv/restic/alpenhof"
        ),
    )
    refused = cli("s3-policies", "alpenhof")
    assert refused.code == ExitCode.BAD_INPUT
    assert "alpenhof: backup repository" in refused.err and "is not on S3" in refused.err
    assert refused.out == ""
