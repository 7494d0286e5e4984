"""Ledger checkpoints published to, and read from, S3 endpoints that answer in their own way.

moto's S3 (Object Lock, versions) stands behind a front on 127.0.0.1 that
forwards every request and answers the ones a test names as another
endpoint would: no object lock, keys that may not read it, a server error,
no versions. As AWS does, the front keeps the SHA-256 sent with an object
(moto keeps it only when also told the algorithm), and it can report a stored
checksum that differs from the object's, as a corrupted store would.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.exceptions import ClientError
from support.clock import controller_zone
from support.moto_s3 import SETUP_KEY, moto_endpoint, s3_client

from webmg_ops.config.offsite_target import OffsiteTarget
from webmg_ops.config.s3_credentials import OffsiteCredentials
from webmg_ops.ledger.records import Checkpoint
from webmg_ops.offsite.checkpoints import (
    CheckpointPublication,
    FetchedCheckpoints,
    ObjectLock,
    PublishedCheckpoint,
    fetch_checkpoints,
    find_object_lock,
    publish_checkpoint,
)
from webmg_ops.offsite.retry import RetryPolicy
from webmg_ops.offsite.s3 import make_s3_client

pytestmark = pytest.mark.tools

CLIENT = "alpenhof"
RUN_ID = "20261130T080000Z-alpenhof-update-3c4d5e"
AT = "2026-11-30T08:00:00+00:00"
FOLDER = "webmg/_ledger/checkpoints/"
HASH_1 = hashlib.sha256(b"entry 1").hexdigest()
HASH_2 = hashlib.sha256(b"entry 2").hexdigest()
SLOW_DOWN = "S3 refused (SlowDown): Please reduce your request rate."
#: Headers of one hop only, never forwarded.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "expect", "content-length", "server", "date"}
)


def error_body(code: str, message: str) -> bytes:
    """Return an S3 error document."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


@dataclass(frozen=True)
class Answer:
    """What the front answers, instead of moto, to one kind of request."""

    status: int
    body: bytes = b""


class _FrontServer(http.server.ThreadingHTTPServer):
    upstream: tuple[str, int]
    #: (method, sub-resource) -> the answer given instead of moto's.
    answers: dict[tuple[str, str], Answer]
    #: (method, sub-resource) of every request received, in order.
    hits: list[tuple[str, str]]
    corrupt_checksums: bool


class _FrontHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FrontServer

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        names = {name for name, _ in parse_qsl(urlsplit(self.path).query, keep_blank_values=True)}
        which = next(
            (name for name in ("object-lock", "versions", "list-type") if name in names), ""
        )
        self.server.hits.append((self.command, which))
        answer = self.server.answers.get((self.command, which))
        if answer is not None:
            self._reply(answer.status, [("Content-Type", "application/xml")], answer.body)
            return
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in HOP_HEADERS
        }
        if body:
            headers["Content-Length"] = str(len(body))
        if "x-amz-checksum-sha256" in {name.lower() for name in headers}:
            # AWS keeps a SHA-256 sent in its header; moto only when told the algorithm too.
            headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            length = response.getheader("Content-Length")
            kept = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in HOP_HEADERS
            ]
        finally:
            upstream.close()
        if self.server.corrupt_checksums:
            other = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
            kept = [
                (name, other if name.lower() == "x-amz-checksum-sha256" else value)
                for name, value in kept
            ]
        self._reply(response.status, kept, data, length)

    def _reply(
        self, status: int, headers: list[tuple[str, str]], body: bytes, length: str | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        # A HEAD answer names the length of the object it has no body of.
        self.send_header(
            "Content-Length", length if self.command == "HEAD" and length else str(len(body))
        )
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Front:
    """The running front: its endpoint, what it answers itself, and what it was asked."""

    server: _FrontServer

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def answers(self) -> dict[tuple[str, str], Answer]:
        return self.server.answers

    @property
    def hits(self) -> list[tuple[str, str]]:
        return self.server.hits

    def corrupt_checksums(self) -> None:
        """From now on, report a stored SHA-256 checksum of other bytes than the object's."""
        self.server.corrupt_checksums = True


@dataclass(frozen=True)
class CountingRetry(RetryPolicy):
    """A retry policy that notes after which attempts a delay is asked for, and waits none."""

    asked: list[int] = field(default_factory=list, compare=False)

    def delay(self, attempt: int) -> float:
        self.asked.append(attempt)
        return 0.0


def policy(attempts: int, botocore_attempts: int = 1) -> CountingRetry:
    return CountingRetry(
        attempts=attempts,
        botocore_attempts=botocore_attempts,
        connect_timeout_s=2.0,
        read_timeout_s=10.0,
    )


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto's S3 for this module's tests (each uses buckets of its own); stop it."""
    with moto_endpoint("127.0.0.1", tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture
def front(moto: str) -> Iterator[Front]:
    """Start a front that forwards to moto; stop it afterwards."""
    server = _FrontServer(("127.0.0.1", 0), _FrontHandler)
    upstream = urlsplit(moto)
    server.upstream = (str(upstream.hostname), int(upstream.port or 80))
    server.answers = {}
    server.hits = []
    server.corrupt_checksums = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Front(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def store(moto: str) -> Any:
    """Return a boto3 client of moto itself, not going through the front."""
    return s3_client(moto, SETUP_KEY)


@pytest.fixture
def bucket(store: Any) -> str:
    """Create a bucket without object lock; return its name."""
    name = f"webmg-{secrets.token_hex(6)}"
    store.create_bucket(Bucket=name)
    return name


@pytest.fixture
def credentials() -> OffsiteCredentials:
    return OffsiteCredentials(
        "test", f"WEBMGFRONT{secrets.token_hex(4).upper()}", f"front-canary-{secrets.token_hex(12)}"
    )


@pytest.fixture
def far_east_clock() -> Iterator[None]:
    """Within the test, the controller's local time is UTC+14 (no tz database needed)."""
    with controller_zone("WEBMG-14"):
        yield


def target_of(front: Front, bucket: str) -> OffsiteTarget:
    return OffsiteTarget.model_validate(
        {"kind": "reports", "endpoint": front.endpoint, "bucket": bucket, "prefix": "webmg/"}
    )


def key_of(seq: int, hash_: str) -> str:
    return f"{FOLDER}{seq:012d}-{hash_}.json"


def body_of(seq: int, hash_: str) -> bytes:
    """The checkpoint object's content, as the format documents it: sorted keys, no spaces."""
    return (
        f'{{"at":"{AT}","client":"{CLIENT}","format":"webmg-ops ledger checkpoint 1",'
        f'"hash":"{hash_}","run_id":"{RUN_ID}","seq":{seq}}}'
    ).encode()


def publish(
    target: OffsiteTarget, credentials: OffsiteCredentials, seq: int, hash_: str, retry: RetryPolicy
) -> CheckpointPublication:
    return publish_checkpoint(
        target,
        credentials,
        Checkpoint(seq, hash_),
        at=AT,
        client=CLIENT,
        run_id=RUN_ID,
        retry=retry,
    )


def unpublished(
    target: OffsiteTarget, seq: int, hash_: str, reason: str, attempts: int
) -> CheckpointPublication:
    return CheckpointPublication(
        Checkpoint(seq, hash_),
        AT,
        CLIENT,
        RUN_ID,
        target,
        key_of(seq, hash_),
        published=False,
        reason=reason,
        attempts=attempts,
    )


# -- publishing --------------------------------------------------------------------------


def test_a_checkpoint_is_stored_with_its_type_and_every_checksum(
    front: Front, bucket: str, store: Any, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, bucket)
    retry = policy(attempts=3)

    publication = publish(target, credentials, 7, HASH_1, retry)

    assert publication == CheckpointPublication(
        Checkpoint(7, HASH_1),
        AT,
        CLIENT,
        RUN_ID,
        target,
        key_of(7, HASH_1),
        published=True,
        lock_note="the bucket has no object lock (ObjectLockConfigurationNotFoundError)",
        attempts=1,
    )
    assert retry.asked == []
    expected = body_of(7, HASH_1)
    head = store.head_object(Bucket=bucket, Key=key_of(7, HASH_1), ChecksumMode="ENABLED")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"sha256": hashlib.sha256(expected).hexdigest()}
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(expected).digest()).decode()
    assert store.get_object(Bucket=bucket, Key=key_of(7, HASH_1))["Body"].read() == expected


def test_a_locked_checkpoint_is_kept_400_days_whatever_the_local_time_zone(
    front: Front, store: Any, credentials: OffsiteCredentials, far_east_clock: None
) -> None:
    bucket = f"webmg-{secrets.token_hex(6)}"
    store.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    before = datetime.now(UTC)

    publication = publish(target_of(front, bucket), credentials, 3, HASH_2, policy(attempts=1))

    after = datetime.now(UTC)
    assert (publication.published, publication.lock_mode, publication.lock_note) == (
        True,
        "COMPLIANCE",
        "",
    )
    assert publication.locked_until is not None
    until = datetime.fromisoformat(publication.locked_until)
    # Said in UTC, as the ledger's other times are.
    assert until.utcoffset() == timedelta(0)
    # S3 keeps the date to the second or finer.
    second = timedelta(seconds=1)
    assert before + timedelta(days=400) - second <= until <= after + timedelta(days=400) + second


def test_a_stored_checksum_that_differs_leaves_the_checkpoint_unpublished(
    front: Front, bucket: str, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, bucket)
    front.corrupt_checksums()
    retry = policy(attempts=2)

    publication = publish(target, credentials, 4, HASH_1, retry)

    reason = "verification failed: the stored SHA-256 checksum differs from the file's"
    assert publication == unpublished(target, 4, HASH_1, reason, attempts=2)
    # One wait, between the two attempts: none after the last.
    assert retry.asked == [1]


def test_a_missing_bucket_is_tried_once_and_named(
    front: Front, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, "webmg-missing")
    retry = policy(attempts=3)

    publication = publish(target, credentials, 5, HASH_2, retry)

    reason = f"bucket webmg-missing does not exist at {front.endpoint}"
    assert publication == unpublished(target, 5, HASH_2, reason, attempts=1)
    assert retry.asked == []
    fetched = fetch_checkpoints(target, credentials, retry=retry)
    assert fetched == FetchedCheckpoints(target, (), (), reason)


def test_a_server_error_is_tried_as_often_as_the_policy_says(
    front: Front, bucket: str, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, bucket)
    front.answers[("GET", "object-lock")] = Answer(
        503, error_body("SlowDown", "Please reduce your request rate.")
    )
    retry = policy(attempts=2, botocore_attempts=2)

    publication = publish(target, credentials, 6, HASH_1, retry)

    assert publication == unpublished(target, 6, HASH_1, SLOW_DOWN, attempts=2)
    assert retry.asked == [1]
    # Two attempts of the policy, each a request and botocore's two retries of it (botocore's
    # max_attempts counts the retries); nothing is sent past the error.
    assert front.hits == [("GET", "object-lock")] * 2 * (1 + 2)


def test_with_no_attempt_allowed_nothing_is_sent(
    front: Front, bucket: str, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, bucket)

    publication = publish(target, credentials, 8, HASH_2, policy(attempts=0))

    assert publication == unpublished(target, 8, HASH_2, "not tried", attempts=0)
    assert front.hits == []


# -- whether a bucket locks objects ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "note"),
    [
        (
            404,
            error_body("NoSuchObjectLockConfiguration", "The specified object does not exist"),
            "the bucket has no object lock (NoSuchObjectLockConfiguration)",
        ),
        (
            400,
            error_body("InvalidRequest", "Bucket is missing Object Lock Configuration"),
            "the bucket has no object lock (InvalidRequest)",
        ),
        (405, b"", "the bucket has no object lock (405)"),
        # An error without a code is named by its status.
        (
            501,
            b"<Error><Message>Object Lock is not implemented</Message></Error>",
            "the bucket has no object lock (501)",
        ),
        (
            403,
            error_body("AccessDenied", "Access Denied"),
            "the keys may not read the bucket's object lock setting",
        ),
        (
            200,
            b'<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"</ObjectLockConfiguration>",
            "object lock is not enabled on the bucket",
        ),
    ],
)
def test_an_endpoint_that_locks_nothing_is_named_so(
    front: Front,
    bucket: str,
    credentials: OffsiteCredentials,
    status: int,
    body: bytes,
    note: str,
) -> None:
    front.answers[("GET", "object-lock")] = Answer(status, body)
    s3 = make_s3_client(target_of(front, bucket), credentials, policy(attempts=1))

    assert find_object_lock(s3, bucket) == ObjectLock(False, default_retention=False, note=note)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, error_body("InternalError", "We encountered an internal error."), "InternalError"),
        (502, b"", "502"),
    ],
)
def test_a_server_error_on_the_lock_setting_is_raised(
    front: Front,
    bucket: str,
    credentials: OffsiteCredentials,
    status: int,
    body: bytes,
    code: str,
) -> None:
    front.answers[("GET", "object-lock")] = Answer(status, body)
    s3 = make_s3_client(target_of(front, bucket), credentials, policy(attempts=1))

    with pytest.raises(ClientError) as raised:
        find_object_lock(s3, bucket)

    assert raised.value.response["Error"]["Code"] == code


# -- reading checkpoints back ------------------------------------------------------------


def test_every_version_in_the_folder_is_read_and_nothing_outside_it(
    front: Front, store: Any, credentials: OffsiteCredentials
) -> None:
    bucket = f"webmg-{secrets.token_hex(6)}"
    store.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    target = target_of(front, bucket)
    for seq, hash_ in ((2, HASH_2), (1, HASH_1)):
        assert publish(target, credentials, seq, hash_, policy(attempts=1)).published
    # Beside the folder: neither these objects nor the delete marker are checkpoints.
    store.put_object(Bucket=bucket, Key="webmg/reports/run.json", Body=b"a report")
    store.put_object(Bucket=bucket, Key="webmg/_ledger/notes.txt", Body=b"notes")
    store.delete_object(Bucket=bucket, Key="webmg/reports/run.json")

    fetched = fetch_checkpoints(target, credentials, retry=policy(attempts=1))

    source = f"s3://{bucket}/"
    assert fetched == FetchedCheckpoints(
        target,
        (
            PublishedCheckpoint(Checkpoint(1, HASH_1), AT, source + key_of(1, HASH_1)),
            PublishedCheckpoint(Checkpoint(2, HASH_2), AT, source + key_of(2, HASH_2)),
        ),
        (),
    )
    assert ("GET", "versions") in front.hits


@pytest.mark.parametrize("status", [400, 404, 405, 501])
def test_an_endpoint_without_versions_is_listed_plainly(
    front: Front, bucket: str, credentials: OffsiteCredentials, status: int
) -> None:
    target = target_of(front, bucket)
    assert publish(target, credentials, 1, HASH_1, policy(attempts=1)).published
    front.answers[("GET", "versions")] = Answer(
        status, error_body("NotImplemented", "A header you provided implies functionality")
    )

    fetched = fetch_checkpoints(target, credentials, retry=policy(attempts=1))

    source = f"s3://{bucket}/{key_of(1, HASH_1)}"
    assert fetched == FetchedCheckpoints(
        target, (PublishedCheckpoint(Checkpoint(1, HASH_1), AT, source),), ()
    )
    assert ("GET", "list-type") in front.hits


def test_a_listing_refused_otherwise_is_the_reason(
    front: Front, bucket: str, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, bucket)
    front.answers[("GET", "versions")] = Answer(403, error_body("AccessDenied", "Access Denied"))

    fetched = fetch_checkpoints(target, credentials, retry=policy(attempts=1))

    assert fetched == FetchedCheckpoints(target, (), (), "S3 refused (AccessDenied): Access Denied")
    assert ("GET", "list-type") not in front.hits


def test_a_listing_is_tried_as_often_as_the_policy_says(
    front: Front, bucket: str, credentials: OffsiteCredentials
) -> None:
    target = target_of(front, bucket)
    front.answers[("GET", "versions")] = Answer(
        503, error_body("SlowDown", "Please reduce your request rate.")
    )

    fetched = fetch_checkpoints(target, credentials, retry=policy(attempts=1, botocore_attempts=2))

    assert fetched == FetchedCheckpoints(target, (), (), SLOW_DOWN)
    # The request and botocore's two retries of it.
    assert front.hits == [("GET", "versions")] * (1 + 2)
