"""Offsite copies against a real S3 endpoint: ``rclone serve s3`` on 127.0.0.1.

Each test that needs S3 gets its own server (a folder as storage, generated
credentials that double as canaries), ended by its PID at teardown; a test
stops and restarts it on the same port to play an outage. restic copies run
the real restic binary into the S3 repository.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import rfc8785
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from support.moto_s3 import free_port, moto_endpoint
from support.restic import RESTIC_PASSWORD

from webmg_ops import offsite, process
from webmg_ops.ansible.vault import Vault
from webmg_ops.backups import restic
from webmg_ops.config.clients import Client, load_client
from webmg_ops.config.offsite_target import OffsiteTarget, parse_target
from webmg_ops.engine.offsite_step import OffsiteStep, checkpoint_after_run
from webmg_ops.errors import BadInput, EnvironmentProblem, ExitCode
from webmg_ops.lab import network
from webmg_ops.lab.s3 import S3Credentials, rclone_binary, server_env
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.records import Checkpoint
from webmg_ops.offsite import (
    OffsiteCredentials,
    RetryPolicy,
    copy_snapshots,
    publish_files,
    publish_pending_command,
    read_pending,
    record_copy,
    record_publication,
    resolve_credentials,
    retry_pending,
    verification_problem,
)
from webmg_ops.offsite.checkpoints import (
    ObjectLock,
    fetch_checkpoints,
    find_object_lock,
    publish_checkpoint,
)
from webmg_ops.offsite.record import record_checkpoint
from webmg_ops.service.records import ledger_recorder
from webmg_ops.settings import Settings

BUCKET = "webmg-offsite"
CLIENT = "alpenhof"
RUN_ID = "20261128T120000Z-alpenhof-drill-0a1b2c"
#: Few, quick attempts: an outage is seen in well under a second.
FAST = RetryPolicy(
    attempts=2, backoff_s=0.01, botocore_attempts=1, connect_timeout_s=1.0, read_timeout_s=10.0
)


def checkpoint_now(settings: Settings, client: Client) -> OffsiteStep | None:
    """Publish the ledger's head after a run, as the engine does with its open ledger."""
    with open_ledger(settings.ledger_url) as ledger:
        return checkpoint_after_run(
            settings,
            client,
            RUN_ID,
            Vault(None),
            history=ledger,
            record=ledger.append_many,
            retry=FAST,
        )


@dataclass
class S3Server:
    """An ``rclone serve s3`` process on 127.0.0.1, storing objects under ``data_dir``."""

    port: int
    data_dir: Path
    config: Path
    log: Path
    credentials: S3Credentials = field(repr=False)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [
            str(rclone_binary()),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--config",
            str(self.config),
            str(self.data_dir),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                env={**os.environ, **server_env(self.credentials)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not network.wait_for_port("127.0.0.1", self.port, 10.0):
            self.stop()
            raise RuntimeError(f"rclone serve s3 did not answer: {self.log.read_text()[-800:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def offsite_credentials(self) -> OffsiteCredentials:
        return OffsiteCredentials(
            "test", self.credentials.access_key_id, self.credentials.secret_access_key
        )

    def boto(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            config=Config(s3={"addressing_style": "path"}),
        )


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """Start an S3 endpoint with fresh canary credentials and one bucket; stop it afterwards."""
    folder = tmp_path / "s3"
    (folder / "data" / BUCKET).mkdir(parents=True)
    (folder / "rclone.conf").touch()
    server = S3Server(
        port=free_port(),
        data_dir=folder / "data",
        config=folder / "rclone.conf",
        log=folder / "rclone.log",
        credentials=S3Credentials(
            f"WEBMGTEST{secrets.token_hex(6).upper()}",
            f"s3-canary-secret-{secrets.token_hex(16)}",
        ),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path, ledger_url: str) -> Settings:
    """Return settings on a private var folder and ledger."""
    return Settings(
        inventories=tmp_path / "inventories", ledger_url=ledger_url, var_dir=tmp_path / "var"
    )


def make_target(server: S3Server, **changes: Any) -> OffsiteTarget:
    data = {"kind": "reports", "endpoint": server.endpoint, "bucket": BUCKET, "prefix": "webmg/"}
    return OffsiteTarget.model_validate({**data, **changes})


def make_reports(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "drill-report.html"
    report.write_text("<h1>Restore drill</h1><p>RPO 5 h, RTO 12 min: met.</p>\n")
    evidence = folder / "drill-evidence.bin"
    evidence.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return [report, evidence]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ledger_entries(url: str, kind: str) -> list[dict[str, Any]]:
    with open_ledger(url, create=False) as ledger:
        return [entry.payload for entry in ledger.entries(kinds=[kind])]


# -- settings and credentials ------------------------------------------------------------


VALID = {"kind": "reports", "endpoint": "https://s3.example.com", "bucket": "webmg-offsite"}


@pytest.mark.parametrize(
    ("change", "field_name", "words"),
    [
        ({"endpoint": "ftp://s3.example.com"}, "endpoint", "http:// or https://"),
        ({"endpoint": "s3.example.com"}, "endpoint", "http:// or https://"),
        ({"endpoint": "http://s3.example.com"}, "endpoint", "use https"),
        ({"endpoint": "https://s3.example.com/webmg-offsite"}, "endpoint", "scheme, host"),
        ({"endpoint": "https://s3.example.com:99999"}, "endpoint", "invalid port"),
        ({"bucket": "Webmg"}, "bucket", "lowercase"),
        ({"bucket": "ab"}, "bucket", "3 to 63"),
        ({"bucket": "-webmg"}, "bucket", "begin and end"),
        ({"bucket": "webmg..offsite"}, "bucket", "two adjacent dots"),
        ({"bucket": "198.18.0.12"}, "bucket", "IP address"),
        ({"bucket": "xn--webmg"}, "bucket", "prefix S3 reserves"),
        ({"bucket": "webmg-s3alias"}, "bucket", "suffix S3 reserves"),
        ({"prefix": "webmg"}, "prefix", "end with '/'"),
        ({"prefix": "/webmg/"}, "prefix", "segments"),
        ({"prefix": "webmg//x/"}, "prefix", "segments"),
        ({"prefix": "../webmg/"}, "prefix", "segments"),
        ({"region": "EU Central"}, "region", "pattern"),
        ({"credentials": "keyring"}, "credentials", "pattern"),
        ({"kind": "rsync"}, "kind", "restic-copy"),
        ({"password": "x"}, "password", "Extra inputs"),
    ],
)
def test_invalid_settings_are_bad_input(
    change: dict[str, str], field_name: str, words: str
) -> None:
    with pytest.raises(BadInput) as caught:
        parse_target({**VALID, **change})
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert f"{field_name}:" in caught.value.message
    assert words in caught.value.message


def test_credentials_in_the_endpoint_are_refused_without_echo() -> None:
    with pytest.raises(BadInput) as caught:
        parse_target({**VALID, "endpoint": "https://AKIDCANARY:s3-url-canary-9f8e@s3.example.com"})
    assert "must not hold credentials" in caught.value.message
    assert "s3-url-canary-9f8e" not in caught.value.message
    assert "AKIDCANARY" not in caught.value.message


def test_valid_settings_are_normalised_and_documented() -> None:
    target = parse_target({**VALID, "endpoint": "HTTPS://S3.Example.com:8443/", "prefix": "a/b/"})
    assert target.endpoint == "https://s3.example.com:8443"
    assert target.region == "us-east-1"
    assert (
        target.repository_location("acme")
        == "s3:https://s3.example.com:8443/webmg-offsite/a/b/acme"
    )
    assert parse_target({**VALID, "endpoint": "http://127.0.0.1:9000"}).endpoint.startswith("http:")
    assert parse_target({**VALID, "endpoint": "http://198.18.0.1:9000"}).endpoint.startswith(
        "http:"
    )
    assert (
        parse_target({**VALID, "credentials": "file:~/s3"}).credentials_file == Path.home() / "s3"
    )
    schema = OffsiteTarget.model_json_schema()
    for name, spec in schema["properties"].items():
        assert spec.get("description") and spec.get("examples"), name


def test_missing_credentials_say_what_is_missing(tmp_path: Path) -> None:
    secret = "s3-canary-secret-credentials-0b9d"
    target = parse_target(VALID)

    with pytest.raises(EnvironmentProblem) as caught:
        resolve_credentials(target, environ={"AWS_ACCESS_KEY_ID": "AKIDCANARY1"})
    assert caught.value.exit_code is ExitCode.ENVIRONMENT
    assert "AWS_SECRET_ACCESS_KEY not set" in caught.value.message
    assert "AKIDCANARY1" not in caught.value.message

    found = resolve_credentials(
        target, environ={"AWS_ACCESS_KEY_ID": "AKIDCANARY1", "AWS_SECRET_ACCESS_KEY": secret}
    )
    assert (found.access_key_id, found.secret_access_key, found.source) == (
        "AKIDCANARY1",
        secret,
        "environment",
    )
    assert secret not in repr(found)
    assert "AKIDCANARY1" not in repr(found)

    file = tmp_path / "s3-credentials"
    on_file = parse_target({**VALID, "credentials": f"file:{file}", "profile": "offsite"})
    with pytest.raises(EnvironmentProblem, match="s3-credentials"):
        resolve_credentials(on_file)
    file.write_text(
        f"[offsite]\naws_access_key_id = AKIDCANARY2\naws_secret_access_key = {secret}%\n"
    )
    file.chmod(0o644)
    with pytest.raises(BadInput, match="chmod 600"):
        resolve_credentials(on_file)
    file.chmod(0o600)
    from_file = resolve_credentials(on_file)
    assert (from_file.access_key_id, from_file.secret_access_key) == ("AKIDCANARY2", f"{secret}%")
    with pytest.raises(BadInput, match=r"no \[other\] section"):
        resolve_credentials(on_file.model_copy(update={"profile": "other"}))

    in_vault = parse_target({**VALID, "credentials": "vault"})
    with pytest.raises(BadInput, match="vault password"):
        resolve_credentials(in_vault)
    with pytest.raises(BadInput) as caught_vault:
        resolve_credentials(in_vault, vault={"webmg_s3_access_key_id": "AKIDCANARY3"})
    assert "webmg_s3_secret_access_key" in caught_vault.value.message
    assert caught_vault.value.exit_code is ExitCode.BAD_INPUT
    assert (
        resolve_credentials(
            in_vault,
            vault={"webmg_s3_access_key_id": "AKIDCANARY3", "webmg_s3_secret_access_key": secret},
        ).secret_access_key
        == secret
    )


def test_verification_compares_every_checksum_the_server_returns() -> None:
    data = b"report\n"
    md5 = hashlib.md5(data).hexdigest()
    sha = sha256_of(data)
    good = {"ContentLength": len(data), "ETag": f'"{md5}"', "Metadata": {"Sha256": sha}}
    assert verification_problem(good, len(data), md5, sha) is None
    assert "size" in str(verification_problem({**good, "ContentLength": 3}, len(data), md5, sha))
    assert "ETag" in str(verification_problem({**good, "ETag": '"' + "0" * 32 + '"'}, 7, md5, sha))
    assert "sha256" in str(
        verification_problem({**good, "Metadata": {"sha256": "0" * 64}}, 7, md5, sha)
    )
    multipart_only = {"ContentLength": len(data), "ETag": '"abc-2"'}
    assert "no MD5 ETag nor SHA-256" in str(verification_problem(multipart_only, 7, md5, sha))


# -- uploads --------------------------------------------------------------------------------


def test_upload_is_checksummed_verified_and_recorded(
    s3_server: S3Server, settings: Settings, tmp_path: Path
) -> None:
    files = make_reports(tmp_path / "run")
    target = make_target(s3_server)

    result = publish_files(target, s3_server.offsite_credentials(), CLIENT, files, RUN_ID)

    assert result.ok, result.unpublished
    s3 = s3_server.boto()
    for publication, path in zip(result.files, files, strict=True):
        assert publication.key == f"webmg/{CLIENT}/{RUN_ID}/{path.name}"
        assert publication.sha256 == sha256_of(path.read_bytes())
        stored = s3.get_object(Bucket=BUCKET, Key=publication.key)["Body"].read()
        assert sha256_of(stored) == publication.sha256
        assert (s3_server.data_dir / BUCKET / publication.key).read_bytes() == path.read_bytes()

    assert record_publication(settings, result, RUN_ID, record=ledger_recorder(settings)) is None
    [entry] = ledger_entries(settings.ledger_url, offsite.PUBLISHED)
    assert entry["run_id"] == RUN_ID
    assert [item["sha256"] for item in entry["files"]] == [item.sha256 for item in result.files]
    assert read_pending(settings) == []


def test_wrong_keys_are_unpublished_without_useless_retries(
    s3_server: S3Server, tmp_path: Path
) -> None:
    wrong = OffsiteCredentials("test", s3_server.credentials.access_key_id, "not-the-secret-key")
    files = make_reports(tmp_path / "run")

    result = publish_files(make_target(s3_server), wrong, CLIENT, files, RUN_ID, retry=FAST)

    assert not result.ok
    first = result.files[0]
    assert first.attempts == 1
    assert "SignatureDoesNotMatch" in str(first.reason)


def test_missing_bucket_is_unpublished(s3_server: S3Server, tmp_path: Path) -> None:
    target = make_target(s3_server, bucket="no-such-bucket")
    files = make_reports(tmp_path / "run")[:1]

    result = publish_files(target, s3_server.offsite_credentials(), CLIENT, files, RUN_ID)

    assert result.unpublished[0].reason == (
        f"bucket no-such-bucket does not exist at {s3_server.endpoint}"
    )


def test_failed_upload_waits_in_pending_then_is_published(
    s3_server: S3Server, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_reports(tmp_path / "run")
    target = make_target(s3_server)
    credentials = s3_server.offsite_credentials()
    s3_server.stop()

    result = publish_files(target, credentials, CLIENT, files, RUN_ID, retry=FAST)

    assert not result.published
    assert "endpoint unreachable" in str(result.files[0].reason)
    assert result.files[0].attempts == FAST.attempts
    assert str(result.files[1].reason).startswith("not tried: endpoint unreachable")

    pending_id = record_publication(settings, result, RUN_ID, record=ledger_recorder(settings))
    [item] = read_pending(settings)
    assert item.id == pending_id
    assert item.files == tuple(str(path) for path in files)
    assert (item.client, item.run_id, item.kind) == (CLIENT, RUN_ID, "reports")
    [entry] = ledger_entries(settings.ledger_url, offsite.UNPUBLISHED)
    assert entry["pending_id"] == pending_id
    assert [file["path"] for file in entry["files"]] == [str(path) for path in files]
    assert "endpoint unreachable" in entry["reason"]

    # Still down: the command says so, and the item stays.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key)
    lines: list[str] = []
    assert (
        publish_pending_command(
            settings, record=ledger_recorder(settings), echo=lines.append, retry=FAST
        )
        == ExitCode.FAILED
    )
    assert lines[0].startswith(f"still pending {CLIENT} reports of run {RUN_ID}")
    [still] = read_pending(settings)
    assert still.attempts == 2

    s3_server.start()
    report = retry_pending(settings, record=ledger_recorder(settings), retry=FAST)

    assert report.ok
    assert [outcome.id for outcome in report.published] == [pending_id]
    assert read_pending(settings) == []
    published = ledger_entries(settings.ledger_url, offsite.PUBLISHED)
    assert published[-1]["pending_id"] == pending_id
    s3 = s3_server.boto()
    for path in files:
        key = f"webmg/{CLIENT}/{RUN_ID}/{path.name}"
        stored = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert sha256_of(stored) == sha256_of(path.read_bytes())
    lines.clear()
    assert (
        publish_pending_command(
            settings, record=ledger_recorder(settings), echo=lines.append, retry=FAST
        )
        == ExitCode.OK
    )
    assert lines == ["no offsite item is pending"]


# -- restic copy ------------------------------------------------------------------------


def make_snapshots(repository: restic.Repository, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    now = datetime.now(UTC)
    for day in (2, 1):
        (folder / f"day-{day}.txt").write_text(f"bookings of day {day}\n" * 1000)
        summary = restic.backup(repository, [folder], at=now - timedelta(days=day))
        ids.append(summary.snapshot_id)
    return ids


def s3_repository(
    server: S3Server, target: OffsiteTarget, source: restic.Repository
) -> restic.Repository:
    return restic.Repository(
        target.repository_location(CLIENT),
        password=source.password,
        environment=server.offsite_credentials().environment(),
        cache_dir=source.cache_dir,
    )


def test_restic_copy_into_s3_lists_the_snapshots(
    s3_server: S3Server, settings: Settings, repository: restic.Repository, tmp_path: Path
) -> None:
    source_ids = make_snapshots(repository, tmp_path / "site")
    target = make_target(s3_server, kind="restic-copy")

    result = copy_snapshots(repository, target, s3_server.offsite_credentials(), CLIENT)

    assert result.ok, result.reason
    assert result.initialised and result.checked
    assert result.repository == f"s3:{s3_server.endpoint}/{BUCKET}/webmg/{CLIENT}"
    assert len(result.snapshots) == 2
    for short_id in source_ids:
        assert any(full.startswith(short_id) for full in result.snapshots)
    assert len(result.copied) == 2
    copies = restic.list_snapshots(s3_repository(s3_server, target, repository))
    assert sorted(snapshot.id for snapshot in copies) == sorted(result.copied)
    assert (s3_server.data_dir / BUCKET / "webmg" / CLIENT / "config").is_file()

    again = copy_snapshots(repository, target, s3_server.offsite_credentials(), CLIENT, check=False)
    assert again.ok and not again.initialised
    assert again.copied == ()

    assert (
        record_copy(settings, result, RUN_ID, repository, record=ledger_recorder(settings)) is None
    )
    [entry] = ledger_entries(settings.ledger_url, offsite.PUBLISHED)
    assert entry["offsite"] == "restic-copy"
    assert sorted(entry["snapshots"]) == sorted(result.snapshots)


def test_failed_copy_waits_in_pending_then_is_copied(
    s3_server: S3Server, settings: Settings, repository: restic.Repository, tmp_path: Path
) -> None:
    make_snapshots(repository, tmp_path / "site")
    target = make_target(s3_server, kind="restic-copy")
    credentials = s3_server.offsite_credentials()
    s3_server.stop()

    failed = copy_snapshots(repository, target, credentials, CLIENT, retry=FAST)

    assert not failed.ok
    assert "endpoint unreachable" in str(failed.reason)
    pending_id = record_copy(settings, failed, RUN_ID, repository, record=ledger_recorder(settings))
    [item] = read_pending(settings)
    assert (item.id, item.kind, item.source) == (pending_id, "restic-copy", repository.location)
    [entry] = ledger_entries(settings.ledger_url, offsite.UNPUBLISHED)
    assert entry["pending_id"] == pending_id

    # The fixture's repository has its password inline, not in a file: the
    # default cannot rebuild it, so the item stays, saying why.
    s3_server.start()
    refused = retry_pending(
        settings,
        record=ledger_recorder(settings),
        credentials_for=lambda _item: credentials,
        retry=FAST,
    )
    assert "password is not in a file" in str(refused.still_pending[0].reason)
    assert len(read_pending(settings)) == 1

    report = retry_pending(
        settings,
        record=ledger_recorder(settings),
        credentials_for=lambda _item: credentials,
        source_for=lambda _item: repository,
        retry=FAST,
    )
    assert report.ok, report.outcomes
    assert read_pending(settings) == []
    assert len(restic.list_snapshots(s3_repository(s3_server, target, repository))) == 2
    assert ledger_entries(settings.ledger_url, offsite.PUBLISHED)[-1]["pending_id"] == pending_id


# -- secrets --------------------------------------------------------------------------------


def test_secrets_never_leak(
    s3_server: S3Server,
    settings: Settings,
    repository: restic.Repository,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    argvs: list[list[str]] = []
    real_run = process.run

    def recording_run(argv: list[str], **options: Any) -> Any:
        argvs.append(list(argv))
        return real_run(argv, **options)

    monkeypatch.setattr(process, "run", recording_run)
    credentials = s3_server.offsite_credentials()
    secret_key = credentials.secret_access_key
    key_id = credentials.access_key_id
    files = make_reports(tmp_path / "run")
    make_snapshots(repository, tmp_path / "site")
    reports = make_target(s3_server)
    copies = make_target(s3_server, kind="restic-copy")
    messages: list[str] = []

    record_publication(
        settings,
        publish_files(reports, credentials, CLIENT, files, RUN_ID),
        RUN_ID,
        record=ledger_recorder(settings),
    )
    copied = copy_snapshots(repository, copies, credentials, CLIENT)
    record_copy(settings, copied, RUN_ID, repository, record=ledger_recorder(settings))
    wrong = OffsiteCredentials("test", key_id, secret_key[::-1])
    refused = publish_files(reports, wrong, CLIENT, files, RUN_ID, retry=FAST)
    record_publication(settings, refused, RUN_ID, record=ledger_recorder(settings))
    head = Checkpoint(1, "ab" * 32)
    when = {"at": "2026-11-28T12:00:00.000000Z", "client": CLIENT, "run_id": RUN_ID, "retry": FAST}
    checkpoints = [publish_checkpoint(reports, wrong, head, **when)]
    s3_server.stop()
    checkpoints.append(publish_checkpoint(reports, credentials, head, **when))
    for publication in checkpoints:
        record_checkpoint(settings, publication, RUN_ID, record=ledger_recorder(settings))
    down = publish_files(reports, credentials, CLIENT, files, RUN_ID, retry=FAST)
    record_publication(settings, down, RUN_ID, record=ledger_recorder(settings))
    record_copy(
        settings,
        copy_snapshots(repository, copies, credentials, CLIENT, retry=FAST),
        RUN_ID,
        repository,
        record=ledger_recorder(settings),
    )
    for environ in ({"AWS_ACCESS_KEY_ID": key_id}, {"AWS_SECRET_ACCESS_KEY": secret_key}):
        try:
            resolve_credentials(reports, environ=environ)
        except EnvironmentProblem as error:
            messages.append(str(error))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    publish_pending_command(settings, record=ledger_recorder(settings), retry=FAST)
    messages.extend(
        outcome.reason or ""
        for outcome in retry_pending(
            settings, record=ledger_recorder(settings), retry=FAST
        ).outcomes
    )

    assert copied.ok and not down.ok and not refused.ok
    assert not any(publication.published for publication in checkpoints)
    captured = capsys.readouterr()
    ledger_bytes = Path(settings.ledger_url.removeprefix("sqlite:///")).read_bytes()
    pending_bytes = offsite.pending_path(settings).read_bytes()
    results = repr([copied, down, refused, *checkpoints])
    texts = {
        "ledger": ledger_bytes.decode("latin-1"),
        "pending": pending_bytes.decode(),
        "messages": "\n".join(messages),
        "results": results,
        "argv": json.dumps(argvs),
    }
    for where, text in texts.items():
        for canary in (secret_key, key_id, RESTIC_PASSWORD):
            assert canary not in text, (where, canary[:6])
    # botocore's debug log carries the key id in Authorization headers; never the secret key.
    for where, text in {"log": caplog.text, "stdout": captured.out, "stderr": captured.err}.items():
        for canary in (secret_key, RESTIC_PASSWORD):
            assert canary not in text, (where, canary[:6])
    assert argvs, "restic ran"


# -- ledger checkpoints published offsite -----------------------------------------------


def point_clients_at(inventories: Path, endpoint: str) -> None:
    """Give alpenhof an offsite target on ``endpoint`` (keys from the environment); no other."""
    for client in ("alpenhof", "atelier-nord", "riverton", "terre-solidaire"):
        file = inventories / client / "client.yml"
        data = yaml.safe_load(file.read_text())
        data["backup"].pop("offsite", None)
        if client == CLIENT:
            data["backup"]["offsite"] = {
                "kind": "reports",
                "endpoint": endpoint,
                "bucket": BUCKET,
                "prefix": "webmg/",
            }
        file.write_text(yaml.safe_dump(data, sort_keys=False))


def record_runs(url: str, count: int) -> None:
    """Append ``count`` runs (two entries each) for the client, as the engine would."""
    with open_ledger(url) as ledger:
        for number in range(count):
            ledger.append("run-started", CLIENT, {"action": "backup", "n": number}, actor="ana")
            ledger.append(
                "run-finished", CLIENT, {"outcome": "succeeded", "n": number}, actor="ana"
            )


def stored_rows(db_file: Path) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(db_file)) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM ledger_entries ORDER BY seq").fetchall()


def documented_hash(prev_hash: str, row: Mapping[str, Any], payload: str) -> str:
    """The chain's hash as the README documents it, computed without the package's code:
    format 1 is sorted compact JSON, format 2 RFC 8785 of the entry with its format."""
    entry: dict[str, Any] = {
        "seq": row["seq"],
        "kind": row["kind"],
        "client": row["client"],
        "at": row["at"],
        "actor": row["actor"],
        "payload": json.loads(payload),
    }
    if row["format"] == 2:
        text = rfc8785.dumps({**entry, "format": 2}).decode()
    else:
        text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def rewrite_and_rehash(db_file: Path, seq: int, old: str, new: str) -> None:
    """Rewrite one entry and recompute every hash, as someone holding the file would."""
    rows = stored_rows(db_file)
    with closing(sqlite3.connect(db_file)) as connection, connection:
        triggers = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall()
        for name, _ in triggers:
            connection.execute(f'DROP TRIGGER "{name}"')
        prev_hash = "0" * 64
        for row in rows:
            payload = row["payload"].replace(old, new) if row["seq"] == seq else row["payload"]
            new_hash = documented_hash(prev_hash, row, payload)
            connection.execute(
                "UPDATE ledger_entries SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (payload, prev_hash, new_hash, row["seq"]),
            )
            prev_hash = new_hash
        for _, sql in triggers:
            connection.execute(sql)


@pytest.fixture
def published_client(
    s3_server: S3Server, inventories: Path, monkeypatch: pytest.MonkeyPatch
) -> Client:
    """Return alpenhof with an offsite target on the test endpoint, its keys in the environment."""
    point_clients_at(inventories, s3_server.endpoint)
    credentials = s3_server.offsite_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key)
    return load_client(inventories, CLIENT)


def test_each_checkpoint_is_published_verified_and_recorded(
    s3_server: S3Server, settings: Settings, published_client: Client
) -> None:
    record_runs(settings.ledger_url, 3)
    db_file = Path(settings.ledger_url.removeprefix("sqlite:///"))
    head = stored_rows(db_file)[-1]

    step = checkpoint_now(settings, published_client)

    assert step is not None and step.published, step
    key = f"webmg/_ledger/checkpoints/{head['seq']:012d}-{head['hash']}.json"
    raw = s3_server.boto().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    stored = json.loads(raw)
    # Canonical JSON: keys sorted, no spaces (the same checkpoint is always the same bytes).
    assert raw == json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
    assert (stored["seq"], stored["hash"], stored["run_id"]) == (head["seq"], head["hash"], RUN_ID)
    assert stored["client"] == CLIENT
    published_at = datetime.fromisoformat(stored["at"])
    assert abs(datetime.now(UTC) - published_at) < timedelta(minutes=5)
    # Read back, the checkpoint keeps the time it was published at.
    fetched = fetch_checkpoints(make_target(s3_server), s3_server.offsite_credentials())
    assert [(item.checkpoint.seq, item.at) for item in fetched.checkpoints] == [
        (head["seq"], stored["at"])
    ]
    [entry] = ledger_entries(settings.ledger_url, offsite.PUBLISHED)
    assert entry["checkpoint"] == f"{head['seq']}:{head['hash']}"
    assert entry["key"] == key
    # rclone's S3 has no object lock: published all the same, and recorded as not locked.
    assert (entry["locked"], entry["lock_note"]) == (
        False,
        "object lock is not enabled on the bucket",
    )


def test_a_rewritten_and_rehashed_ledger_is_caught_by_the_published_checkpoints(
    s3_server: S3Server,
    settings: Settings,
    published_client: Client,
    cli: Callable[..., Any],
) -> None:
    record_runs(settings.ledger_url, 2)
    first = checkpoint_now(settings, published_client)
    record_runs(settings.ledger_url, 2)
    second = checkpoint_now(settings, published_client)
    assert first is not None and first.published and second is not None and second.published
    db_file = Path(settings.ledger_url.removeprefix("sqlite:///"))
    published_seqs = sorted(
        int(item["Key"].rsplit("/", 1)[1].split("-")[0])
        for item in s3_server.boto().list_objects_v2(Bucket=BUCKET)["Contents"]
        if "/_ledger/checkpoints/" in item["Key"]
    )
    assert len(published_seqs) == 2
    intact = cli("ledger", "verify", "--against-published", "--json")
    assert intact.code == ExitCode.OK, intact
    assert json.loads(intact.out)["published_compared"] == 2

    # The attacker turns the second run's failure-free record into another one and re-hashes.
    rewrite_and_rehash(db_file, 3, '"n":1', '"n":7')

    alone = cli("ledger", "verify")
    assert alone.code == ExitCode.OK, alone  # the chain alone looks intact
    caught = cli("ledger", "verify", "--against-published", "--json")
    assert caught.code == ExitCode.FAILED, caught
    report = json.loads(caught.out)
    # Entry 3 was rewritten: the first checkpoint published after it is where it shows.
    first_after = min(seq for seq in published_seqs if seq >= 3)
    assert (report["ok"], report["first_bad_seq"]) == (False, first_after)
    assert "was rewritten" in report["reason"] and "published at s3://" in report["reason"]
    human = cli("ledger", "verify", "--against-published")
    assert human.code == ExitCode.FAILED and f"broken at entry {first_after}" in human.err


def test_a_cut_ledger_is_caught_by_the_published_checkpoints(
    settings: Settings, published_client: Client, cli: Callable[..., Any]
) -> None:
    record_runs(settings.ledger_url, 3)
    step = checkpoint_now(settings, published_client)
    assert step is not None and step.published
    db_file = Path(settings.ledger_url.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(db_file)) as connection, connection:
        connection.execute("DROP TRIGGER ledger_entries_no_delete")
        connection.execute("DELETE FROM ledger_entries WHERE seq > 4")

    caught = cli("ledger", "verify", "--against-published", "--json")

    assert caught.code == ExitCode.FAILED
    assert json.loads(caught.out)["first_bad_seq"] == 5


def test_an_object_that_is_no_checkpoint_fails_the_comparison(
    s3_server: S3Server,
    settings: Settings,
    published_client: Client,
    cli: Callable[..., Any],
) -> None:
    record_runs(settings.ledger_url, 1)
    head = stored_rows(Path(settings.ledger_url.removeprefix("sqlite:///")))[-1]
    forged = f"webmg/_ledger/checkpoints/{head['seq']:012d}-{'0' * 64}.json"
    body = json.dumps({"format": "webmg-ops ledger checkpoint 1", "seq": 1, "hash": head["hash"]})
    s3_server.boto().put_object(Bucket=BUCKET, Key=forged, Body=body.encode())

    done = cli("ledger", "verify", "--against-published")

    assert done.code == ExitCode.FAILED
    assert "Not a valid checkpoint" in done.err and forged in done.err


def test_an_unreadable_target_is_no_pass(
    s3_server: S3Server, settings: Settings, published_client: Client, cli: Callable[..., Any]
) -> None:
    record_runs(settings.ledger_url, 1)
    s3_server.stop()

    done = cli("ledger", "verify", "--against-published")

    assert done.code == ExitCode.ENVIRONMENT, done
    assert "Error: cannot compare with every published checkpoint" in done.err
    assert "Traceback" not in done.err
    # The result says which target could not be read, and why.
    target = make_target(s3_server)
    fetched = fetch_checkpoints(target, s3_server.offsite_credentials())
    assert (fetched.target, fetched.checkpoints, fetched.problems) == (target, (), ())
    assert fetched.reason is not None and fetched.reason.startswith("endpoint unreachable: ")
    assert s3_server.endpoint.split("://", 1)[1] in fetched.reason


def test_a_checkpoint_not_published_waits_in_pending_then_is_published(
    s3_server: S3Server, settings: Settings, published_client: Client
) -> None:
    record_runs(settings.ledger_url, 2)
    head = stored_rows(Path(settings.ledger_url.removeprefix("sqlite:///")))[-1]
    s3_server.stop()

    step = checkpoint_now(settings, published_client)

    assert step is not None and not step.published and step.pending_id
    [item] = read_pending(settings)
    assert (item.kind, item.checkpoint) == ("checkpoint", f"{head['seq']}:{head['hash']}")
    [entry] = ledger_entries(settings.ledger_url, offsite.UNPUBLISHED)
    assert entry["pending_id"] == item.id and "endpoint unreachable" in entry["reason"]
    record_runs(settings.ledger_url, 1)  # the ledger moves on; the retry publishes that head

    s3_server.start()
    report = retry_pending(settings, record=ledger_recorder(settings), retry=FAST)

    assert report.ok and read_pending(settings) == []
    key = f"webmg/_ledger/checkpoints/{head['seq']:012d}-{head['hash']}.json"
    raw = s3_server.boto().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    stored = json.loads(raw)
    # Canonical JSON: keys sorted, no spaces (the same checkpoint is always the same bytes).
    assert raw == json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
    assert stored["hash"] == head["hash"]
    assert ledger_entries(settings.ledger_url, offsite.PUBLISHED)[-1]["pending_id"] == item.id


def test_comparing_without_any_offsite_target_is_no_pass(
    inventories: Path, settings: Settings, cli: Callable[..., Any]
) -> None:
    for client in ("atelier-nord", "riverton"):
        file = inventories / client / "client.yml"
        data = yaml.safe_load(file.read_text())
        data["backup"].pop("offsite")
        file.write_text(yaml.safe_dump(data, sort_keys=False))
    record_runs(settings.ledger_url, 1)

    done = cli("ledger", "verify", "--against-published")

    assert done.code == ExitCode.ENVIRONMENT
    assert "Error: --against-published: no client's contract names an offsite target" in done.err


# -- checkpoints on an endpoint with Object Lock and versions ----------------------------


@pytest.fixture
def locking_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Start an S3 endpoint that implements Object Lock and versions; stop it afterwards.

    rclone's S3 has neither, so the lock and the versions are tested here.
    """
    with moto_endpoint("127.0.0.1", tmp_path / "moto.log") as endpoint:
        # moto accepts any keys until told otherwise; these double as canaries.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"WEBMGLOCK{secrets.token_hex(4).upper()}")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"lock-canary-{secrets.token_hex(12)}")
        yield endpoint


def locking_s3(endpoint: str) -> Any:
    # A session of its own: boto3's default one would keep these credentials for every
    # later client of this process that names none.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def test_a_locked_checkpoint_outlives_the_keys_that_wrote_it(
    locking_endpoint: str,
    inventories: Path,
    settings: Settings,
    cli: Callable[..., Any],
) -> None:
    s3 = locking_s3(locking_endpoint)
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    point_clients_at(inventories, locking_endpoint)
    client = load_client(inventories, CLIENT)
    record_runs(settings.ledger_url, 2)
    published_at = datetime.now(UTC)

    step = checkpoint_now(settings, client)

    assert step is not None and step.published, step
    [entry] = ledger_entries(settings.ledger_url, offsite.PUBLISHED)
    assert (entry["locked"], entry["lock_mode"]) == (True, "COMPLIANCE")
    until = datetime.fromisoformat(entry["locked_until"])
    assert timedelta(days=399) < until - published_at < timedelta(days=401)
    [version] = s3.list_object_versions(Bucket=BUCKET, Prefix=entry["key"])["Versions"]

    # With the controller's own keys: the locked version cannot be deleted...
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=BUCKET, Key=entry["key"], VersionId=version["VersionId"])
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # ...and a plain DELETE only hides it behind a delete marker, which verify reports.
    s3.delete_object(Bucket=BUCKET, Key=entry["key"])
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="webmg/_ledger/")
    done = cli("ledger", "verify", "--against-published", "--json")
    assert done.code == ExitCode.FAILED, done
    assert (
        f"s3://{BUCKET}/{entry['key']}: a delete marker hides this checkpoint"
        " (someone tried to delete it)"
    ) in done.err
    # The hidden checkpoint is still compared with the chain.
    assert json.loads(done.out)["published_compared"] == 1


def test_a_bucket_default_retention_applies_to_checkpoints(
    locking_endpoint: str, inventories: Path, settings: Settings
) -> None:
    s3 = locking_s3(locking_endpoint)
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
        },
    )
    point_clients_at(inventories, locking_endpoint)
    record_runs(settings.ledger_url, 1)

    step = checkpoint_now(settings, load_client(inventories, CLIENT))

    assert step is not None and step.published, step
    [entry] = ledger_entries(settings.ledger_url, offsite.PUBLISHED)
    assert (entry["locked"], entry["lock_mode"]) == (True, "GOVERNANCE")


def test_each_object_that_is_no_checkpoint_is_named_with_why(s3_server: S3Server) -> None:
    """Every object in the checkpoints folder is read: a valid one is returned with its time
    (or none), each invalid one is named with the reason, whatever else it holds."""
    target = make_target(s3_server)
    folder = "webmg/_ledger/checkpoints/"
    hashes = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(6)]
    fmt = "webmg-ops ledger checkpoint 1"
    limit = 4096  # the largest checkpoint object read, in bytes

    def document(seq: int, hash_: str, **more: Any) -> bytes:
        return json.dumps({"format": fmt, "seq": seq, "hash": hash_, **more}).encode()

    def padded(body: bytes, size: int) -> bytes:
        return body[:-1] + b" " * (size - len(body)) + b"}"

    objects = {
        f"{folder}{1:012d}-{hashes[1]}.json": document(1, hashes[1], at="2026-11-30T08:00:00Z"),
        f"{folder}{2:012d}-{hashes[2]}.json": document(2, hashes[2]),  # no time given
        f"{folder}{3:012d}-{hashes[3]}.json": padded(document(3, hashes[3]), limit),
        f"{folder}notes.txt": document(4, hashes[4]),
        f"{folder}{5:012d}-{hashes[5]}.json": json.dumps({"format": "other"}).encode(),
        f"{folder}{6:012d}-{hashes[0]}.json": document(7, hashes[0]),  # another seq
        f"{folder}{8:012d}-{hashes[1]}.json": document(8, hashes[2]),  # another hash
        f"{folder}{9:012d}-{hashes[3]}.json": padded(document(9, hashes[3]), limit + 2),
        # Outside the folder: not a checkpoint's business.
        f"webmg/reports/{10:012d}-{hashes[4]}.json": b"a report",
    }
    client = s3_server.boto()
    for key, body in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)

    fetched = fetch_checkpoints(target, s3_server.offsite_credentials())

    assert (fetched.target, fetched.reason) == (target, None)
    assert [
        (item.checkpoint.seq, item.checkpoint.hash, item.at, item.source)
        for item in fetched.checkpoints
    ] == [
        (1, hashes[1], "2026-11-30T08:00:00Z", f"s3://{BUCKET}/{folder}{1:012d}-{hashes[1]}.json"),
        (2, hashes[2], "", f"s3://{BUCKET}/{folder}{2:012d}-{hashes[2]}.json"),
        (3, hashes[3], "", f"s3://{BUCKET}/{folder}{3:012d}-{hashes[3]}.json"),
    ]
    problems = {
        problem.split(": ", 1)[0]: problem.split(": ", 1)[1] for problem in fetched.problems
    }
    where = f"s3://{BUCKET}/{folder}"
    assert problems[f"{where}notes.txt"] == "its name is not <seq>-<hash>.json"
    assert (
        problems[f"{where}{5:012d}-{hashes[5]}.json"] == "it is not a webmg-ops ledger checkpoint"
    )
    another = "its content names another checkpoint than its key"
    assert problems[f"{where}{6:012d}-{hashes[0]}.json"] == another
    assert problems[f"{where}{8:012d}-{hashes[1]}.json"] == another
    # Past the limit, only the limit is read: what is left is no JSON document.
    assert f"{where}{9:012d}-{hashes[3]}.json" in problems
    assert len(fetched.problems) == 5


def test_a_bucket_without_object_lock_is_named_so(locking_endpoint: str) -> None:
    s3 = locking_s3(locking_endpoint)
    s3.create_bucket(Bucket=BUCKET)

    lock = find_object_lock(s3, BUCKET)

    assert lock == ObjectLock(
        False, note="the bucket has no object lock (ObjectLockConfigurationNotFoundError)"
    )
