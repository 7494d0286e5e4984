"""Talking to S3: a boto3 client for a target, and what botocore's errors mean.

boto3 and botocore are imported inside the functions, when S3 is used.
"""

from __future__ import annotations

from typing import Any

from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials
from webmg_ops.offsite.retry import DEFAULT_RETRY, RetryPolicy


def make_s3_client(
    target: OffsiteTarget, credentials: OffsiteCredentials, retry: RetryPolicy = DEFAULT_RETRY
) -> Any:
    """Given a target and its keys, return a boto3 S3 client for it (path-style addressing)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=target.region,
    )
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": retry.botocore_attempts, "mode": "standard"},
        connect_timeout=retry.connect_timeout_s,
        read_timeout=retry.read_timeout_s,
        # We send Content-MD5 and a SHA-256 ourselves; botocore's default extra
        # CRC32 (aws-chunked trailers over https) is not understood by every
        # S3-compatible server.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=target.endpoint, config=config)


def is_unreachable(error: BaseException) -> bool:
    """Given an error, return whether it says the endpoint could not be reached."""
    from botocore.exceptions import EndpointConnectionError

    return isinstance(error, EndpointConnectionError)


def describe_error(error: BaseException, target: OffsiteTarget) -> str:
    """Given an S3 or file error and the target, return the reason to record (not masked)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "")) or "error"
        if code in ("NoSuchBucket",):
            return f"bucket {target.bucket} does not exist at {target.endpoint}"
        message = str(details.get("Message", "")).strip()
        return f"S3 refused ({code}){': ' + message if message else ''}"
    if is_unreachable(error):
        return f"endpoint unreachable: {error}"
    if isinstance(error, BotoCoreError):
        return f"S3 request failed: {error}"
    if isinstance(error, OSError):
        return f"cannot read the file: {error.strerror or error}"
    return str(error)


#: Client errors (4xx) that another attempt may cure: the rest (no bucket,
#: access denied, bad signature) would fail the same way until someone acts.
TRANSIENT_CLIENT_ERRORS = frozenset(
    {"BadDigest", "IncompleteBody", "RequestTimeout", "RequestTimeTooSkewed", "SlowDown"}
)


def is_permanent(error: BaseException) -> bool:
    """Given an error, return whether another attempt would fail the same way."""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return False
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(error.response.get("Error", {}).get("Code", ""))
    return 400 <= status < 500 and status != 429 and code not in TRANSIENT_CLIENT_ERRORS


def is_s3_failure(error: BaseException) -> bool:
    """Given an error, return whether it is an S3, network or file failure (kept as a result)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(error, BotoCoreError | ClientError | OSError)
