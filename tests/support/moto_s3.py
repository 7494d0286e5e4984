"""An S3 endpoint with what rclone's lacks (Object Lock, versions, IAM policies): moto's server.

moto stands in for a cloud provider's S3 and IAM, reached through boto3 and
restic exactly as the real ones are. It is a dev dependency installed
beside this Python by ``make setup``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from support.capability import missing
from webmg_ops.lab import network

#: A policy that allows everything (the controller's key in the tests).
ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}

#: Any key does while the endpoint does not check signatures yet.
SETUP_KEY = ("setup", "setup")


def find_moto_server() -> Path | None:
    """Return moto's S3 server (a dev dependency, beside this Python), None if absent."""
    beside = Path(sys.executable).parent / "moto_server"
    found = beside if beside.is_file() else shutil.which("moto_server")
    return Path(found) if found else None


def free_port(address: str = "127.0.0.1") -> int:
    """Return a TCP port on ``address`` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_endpoint(address: str, log: Path) -> Iterator[str]:
    """Start moto's server on ``address`` (its output in ``log``); yield its URL; stop it.

    Fail (or skip, with the opt-out set) when moto is not installed.
    """
    server = find_moto_server()
    if server is None:
        missing("moto_server not found: run `make setup`")
    port = free_port(address)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(server), "-H", address, "-p", str(port)], stdout=output, stderr=output
        )
    try:
        if not network.wait_for_port(address, port, 30.0):
            raise RuntimeError(f"moto_server did not answer: {log.read_text()[-800:]}")
        yield f"http://{address}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # On a loaded machine werkzeug may not finish its shutdown in time: the
            # server's state is thrown away anyway, so end it for sure.
            process.kill()
            process.wait(timeout=30)


def enforce_iam(endpoint: str) -> None:
    """Make the endpoint check every later request's signature against IAM's users and
    their policies (until then it accepts any key, which is how it is set up).
    """
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        # Not a form: the server reads the raw body as the count of requests left unchecked.
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def s3_client(endpoint: str, key: tuple[str, str]) -> Any:
    """Return a boto3 S3 client of ENDPOINT holding KEY (access key id, secret)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(s3={"addressing_style": "path"}),
    )


def iam_user(endpoint: str, name: str, policy: dict[str, Any] | None) -> tuple[str, str]:
    """Create an IAM user NAME on ENDPOINT with POLICY inline (None: no policy) and a key;
    return the key. Only while the endpoint does not check signatures yet.
    """
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=SETUP_KEY[0],
        aws_secret_access_key=SETUP_KEY[1],
    )
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="backup", PolicyDocument=json.dumps(policy))
    made = iam.create_access_key(UserName=name)["AccessKey"]
    return str(made["AccessKeyId"]), str(made["SecretAccessKey"])
