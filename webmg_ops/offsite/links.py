"""Presigned links: time-limited GET URLs to objects already published.

A presigned link carries its own signature (SigV4, query-string form), so
whoever holds it reads the object without keys until it expires. S3 caps that
life at 7 days (:data:`MAX_LINK_LIFE`). Signing is local: no request is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials
from webmg_ops.errors import BadInput
from webmg_ops.offsite.s3 import make_s3_client

#: The longest life of a SigV4 presigned URL (604,800 seconds).
MAX_LINK_LIFE = timedelta(days=7)


@dataclass(frozen=True)
class PresignedLink:
    """A presigned GET URL and the instant it stops working (UTC, to the second)."""

    url: str
    expires_at: datetime


def link_expiry(url: str) -> datetime:
    """Given a SigV4 presigned URL, return when it expires: its ``X-Amz-Date`` plus
    ``X-Amz-Expires`` seconds (the instant S3 checks). Raise ValueError if it has neither."""
    query = parse_qs(urlsplit(url).query)
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return signed + timedelta(seconds=int(query["X-Amz-Expires"][0]))


def presigned_links(
    target: OffsiteTarget,
    credentials: OffsiteCredentials,
    keys: Sequence[str],
    life: timedelta,
) -> dict[str, PresignedLink]:
    """Given a target, its keys, object keys and how long the links live, return a
    presigned GET link per object key, with its expiry as signed.

    Raise BadInput if ``life`` is not between one second and :data:`MAX_LINK_LIFE`
    (S3 would refuse the link once fetched).
    """
    seconds = int(life.total_seconds())
    if not 1 <= seconds <= int(MAX_LINK_LIFE.total_seconds()):
        raise BadInput(f"a presigned link lives 1 second to {MAX_LINK_LIFE.days} days, not {life}")
    s3 = make_s3_client(target, credentials)
    links: dict[str, PresignedLink] = {}
    for key in keys:
        url = str(
            s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": target.bucket, "Key": key},
                ExpiresIn=seconds,
                HttpMethod="GET",
            )
        )
        # The signature's own date, not a clock read beside it: they may differ by a second.
        links[key] = PresignedLink(url, link_expiry(url))
    return links
