"""What a host's own S3 key may do: the IAM policy of a write-only key per backed-up host.

A client whose contract puts its repositories in an S3 bucket gives each
host a key pair of its own (the vault's ``webmg_s3_host_keys``), never the
controller's (``webmg_s3_access_key_id``, which applies retention, checks
and drills) and never the offsite copy's. The agency attaches to each host's
key the policy :func:`host_key_policy` returns, so that with it a host can:

- find the bucket and list its keys (restic lists before it writes);
- read and add objects under its own repository's prefix, nowhere else;
- delete its own locks (restic releases the lock it took), nothing else.

So the host cannot read another host's repository, write into it, or delete
its own snapshots or data. One thing a bucket policy cannot stop: a
``PutObject`` on a key that exists replaces it. With versioning on the
bucket (and Object Lock where the endpoint has it) the replaced version
stays, and the host's key may not delete versions; restic names its objects
by the hash of their content, so ``restic check --read-data`` on the
controller names any object whose content was replaced.

Listing is not narrowed to the host's prefix: S3's ``s3:prefix`` condition
would do it on AWS, but endpoints differ in whether they evaluate it, and a
policy that an endpoint reads differently fails every backup. A host can
therefore list, not read, the names and sizes of other hosts' objects: the
names are hashes of encrypted content.
"""

from __future__ import annotations

from typing import Any

from webmg_ops.config.repository_location import (
    S3Location,
    host_repository_location,
    parse_repository_location,
)

#: IAM's policy language version (the only current one).
POLICY_VERSION = "2012-10-17"


def host_prefix(location: S3Location, host: str) -> str:
    """Given an S3 location and a backed-up host, return the key prefix of the host's
    repository (no trailing slash).
    """
    return f"{location.prefix.strip('/')}/{host}".lstrip("/")


def host_key_policy(repository: str, host: str) -> dict[str, Any]:
    """Given a contract's ``backup.repository`` (an ``s3:`` location) and a backed-up host,
    return the IAM policy document of the host's own key.

    Raise ValueError if the location is not valid, is not on S3, or the
    host's name cannot name a repository.
    """
    host_repository_location(repository, host)  # validates the location and the host's name
    location = parse_repository_location(repository)
    if not isinstance(location, S3Location):
        raise ValueError(
            f"backup repository {repository!r} is not on S3: a host's S3 key needs an s3: location"
        )
    bucket = f"arn:aws:s3:::{location.bucket}"
    own = f"{bucket}/{host_prefix(location, host)}"
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "FindTheBucket",
                "Effect": "Allow",
                # s3:HeadBucket is no IAM action on AWS (there, HEAD needs s3:ListBucket), but
                # S3-compatible endpoints that check HEAD by its own name need it for restic's
                # "does the bucket exist" before it creates a repository.
                "Action": ["s3:GetBucketLocation", "s3:HeadBucket", "s3:ListBucket"],
                "Resource": bucket,
            },
            {
                "Sid": "ReadAndAddToItsOwnRepository",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{own}/*",
            },
            {
                "Sid": "ReleaseItsOwnLocks",
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Resource": f"{own}/locks/*",
            },
        ],
    }


def host_key_policies(repository: str, hosts: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Given a contract's ``s3:`` repository and the backed-up hosts, return each host's
    key policy by host name. Raise ValueError as :func:`host_key_policy` does.
    """
    return {host: host_key_policy(repository, host) for host in hosts}
