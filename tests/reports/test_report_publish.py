"""``report CLIENT --publish``: the report's files uploaded to moto's S3 server on
127.0.0.1, a presigned link per file, the links mailed to the business owner through an
SMTP server (aiosmtpd) on 127.0.0.1 that asks for the password kept in the client's vault,
and a ``report-published`` entry holding keys, sha256 and expiry (never a link).

Expectations are computed here: the sha256 of the files on disk, the expiry from the
clock read around the command and the contract's ``reporting.link_days``, the object
keys from the contract's target. Secrets (the S3 secret key, the SMTP password) are
canaries searched for in every output, the ledger and the mail.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from support.mailbox import Mailbox, serve_mailbox
from support.moto_s3 import free_port, moto_endpoint
from support.waiting import wait_until

from webmg_ops.ansible.vault import encrypt_bytes
from webmg_ops.errors import EnvironmentProblem, ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.offsite.retry import RetryPolicy
from webmg_ops.service.report import write_client_report
from webmg_ops.service.report_publish import publish_client_report, with_recipient
from webmg_ops.settings import resolve_settings

CLIENT = "alpenhof"
OWNER = "anna.gruber@alpenhof.example"
PERIOD = "2026-10"
BUCKET = "webmg-reports"
LINK_DAYS = 3
FILES = ("report.html", "report.pdf", "checkpoint.txt")
SMTP_USER = "reports"
SMTP_PASSWORD = "smtp-canary-" + secrets.token_hex(10)
S3_SECRET = "s3-canary-" + secrets.token_hex(12)
VAULT_PASSWORD = b"vault-password-of-the-publish-tests"

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]


def text_of(raw: bytes) -> str:
    """Return the decoded text parts of a mail (a long link may be folded in transit)."""
    message = message_from_bytes(raw)
    parts = [part for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(part.get_payload(decode=True).decode() for part in parts)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server that asks for the password kept in the vault."""
    box = Mailbox(credentials=(SMTP_USER, SMTP_PASSWORD))
    with serve_mailbox(box) as port:
        yield box, port


@pytest.fixture
def vault_file(inventories: Path, tmp_path: Path) -> Path:
    """Alpenhof's vault holds the SMTP password; return the vault's password file."""
    vault = inventories / CLIENT / "group_vars" / "all" / "vault.yml"
    vault.write_bytes(
        encrypt_bytes(f"webmg_smtp_password: {SMTP_PASSWORD}\n".encode(), VAULT_PASSWORD)
    )
    password = tmp_path / "vault-password"
    password.write_bytes(VAULT_PASSWORD)
    password.chmod(0o600)
    return password


@pytest.fixture
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Set the offsite keys in the environment (moto accepts any); return them."""
    key = ("WEBMGPUB" + secrets.token_hex(4).upper(), S3_SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return key


def configure(edit_contract: EditContract, endpoint: str, smtp_port: int | None) -> None:
    """Alpenhof publishes to ENDPOINT with links of LINK_DAYS, and its first escalation
    step mails through the SMTP server (the on-call address, replaced by the owner's);
    with no SMTP port, it notifies a webhook only (no mail sender anywhere)."""
    mail = (
        f"mailto://{SMTP_USER}:{{vault:webmg_smtp_password}}@127.0.0.1:{smtp_port}"
        "?mode=insecure&from=reports@agency.example&to=oncall@agency.example"
    )

    def change(data: dict[str, Any]) -> None:
        data.setdefault("backup", {})["offsite"] = {
            "kind": "reports",
            "endpoint": endpoint,
            "bucket": BUCKET,
            "prefix": "webmg/",
        }
        data["reporting"] = {"link_days": LINK_DAYS}
        data["escalation"][0]["notify"] = [mail] if smtp_port else ["json://127.0.0.1:9/hook"]

    edit_contract(CLIENT, change)


def make_bucket(endpoint: str) -> Any:
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket=BUCKET)
    return s3


def entries(url: str, kind: str) -> list[dict[str, Any]]:
    with open_ledger(url, create=False) as ledger:
        return [dict(entry.payload) for entry in ledger.entries(kinds=(kind,))]


def raw_ledger(url: str) -> str:
    with open_ledger(url, create=False) as ledger:
        return "\n".join(f"{e.kind} {e.payload_json}" for e in ledger.entries())


def report_folder(var: Path) -> Path:
    return var / "reports" / CLIENT / PERIOD


@pytest.mark.tools
def test_published_files_equal_the_local_ones_and_their_links_are_mailed_once(
    cli: Cli,
    edit_contract: EditContract,
    mailbox: tuple[Mailbox, int],
    vault_file: Path,
    s3_keys: tuple[str, str],
    private_var: Path,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    """Each uploaded object is the local file (sha256), each link returns the file's
    bytes, the links expire LINK_DAYS after signing, the owner gets one mail holding
    them, the entry records keys, sha256 and expiry but no link, and neither the S3
    secret key nor the SMTP password appears anywhere but where it belongs."""
    box, smtp_port = mailbox
    with moto_endpoint("127.0.0.1", tmp_path / "moto.log") as endpoint:
        s3 = make_bucket(endpoint)
        configure(edit_contract, endpoint, smtp_port)
        before = datetime.now(UTC).replace(microsecond=0)
        done = cli(
            "report", CLIENT, "--period", PERIOD, "--publish", "--json",
            "--vault-password-file", str(vault_file),
        )  # fmt: skip
        after = datetime.now(UTC)
        assert done.code == ExitCode.OK, done
        published = json.loads(done.out)["published"]

        folder = report_folder(private_var)
        local = {name: (folder / name).read_bytes() for name in FILES}
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in local.items()}
        expected_keys = {name: f"webmg/{CLIENT}/reports/{PERIOD}/{name}" for name in FILES}
        by_name = {Path(item["key"]).name: item for item in published["objects"].values()}
        signed_dates: list[datetime] = []
        assert {name: item["key"] for name, item in by_name.items()} == expected_keys
        for name, item in by_name.items():
            stored = s3.get_object(Bucket=BUCKET, Key=expected_keys[name])["Body"].read()
            assert hashlib.sha256(stored).hexdigest() == digests[name] == item["sha256"]
            with urllib.request.urlopen(item["link"], timeout=10) as answer:
                assert answer.read() == local[name]
            query = parse_qs(urlsplit(item["link"]).query)
            assert query["X-Amz-Expires"] == [str(LINK_DAYS * 86400)]
            signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
            signed_dates.append(signed.replace(tzinfo=UTC))

    # Expiry = the instant of signing + link_days: the clock read around the command
    # brackets it, and it is the earliest link's (S3 checks each link's own date).
    expires = datetime.fromisoformat(published["expires_at"])
    life = timedelta(days=LINK_DAYS)
    assert before + life <= expires <= after + life
    assert expires == min(signed_dates) + life
    assert published["notified"] is True

    assert wait_until(lambda: len(box.messages) >= 1, 10.0)
    (mail,) = box.messages
    assert mail["to"] == [OWNER]
    body = text_of(mail["raw"])
    for item in by_name.values():
        assert item["link"] in body
    assert box.logins == [(SMTP_USER, SMTP_PASSWORD)]

    (entry,) = entries(ledger_url, "report-published")
    assert entry["period"] == PERIOD
    assert entry["expires_at"] == published["expires_at"]
    assert entry["link_days"] == LINK_DAYS
    assert {Path(item["key"]).name: item["sha256"] for item in entry["objects"].values()} == (
        digests
    )
    assert (entry["notified"], entry["recipient"]) == (True, OWNER)
    assert "reason" not in entry
    assert entry["target"].startswith(f"mailto://{SMTP_USER}:")
    assert f"to={OWNER}" in entry["target"]
    ledger_text = raw_ledger(ledger_url)
    assert "X-Amz-Signature" not in ledger_text
    for secret in (S3_SECRET, SMTP_PASSWORD):
        for where in (done.out, done.err, ledger_text, mail["raw"].decode(errors="replace")):
            assert secret not in where


@pytest.mark.tools
@pytest.mark.parametrize(
    ("smtp_down", "expected_reason"),
    [
        (True, "Connection error"),
        (False, "no mailto:// target in the first escalation step nor the agency's on-call"),
    ],
    ids=["smtp-down", "no-mail-sender"],
)
def test_a_mail_that_fails_is_recorded_and_exits_1_with_the_report_published(
    cli: Cli,
    edit_contract: EditContract,
    vault_file: Path,
    s3_keys: tuple[str, str],
    ledger_url: str,
    tmp_path: Path,
    smtp_down: bool,
    expected_reason: str,
) -> None:
    """With no SMTP server listening, or no e-mail URL in the escalation path (the
    agency's contract names none), the files are still published and the entry says
    the owner was not notified, with a reason free of the SMTP password; exit 1."""
    with moto_endpoint("127.0.0.1", tmp_path / "moto.log") as endpoint:
        s3 = make_bucket(endpoint)
        configure(edit_contract, endpoint, free_port() if smtp_down else None)
        done = cli(
            "report", CLIENT, "--period", PERIOD, "--publish",
            "--vault-password-file", str(vault_file),
        )  # fmt: skip
        listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]

    assert done.code == ExitCode.FAILED, done
    assert sorted(Path(item["Key"]).name for item in listed) == sorted(FILES)
    links = [line.split(" ", 1) for line in done.out.splitlines() if line.strip()]
    assert sorted(name for name, _link in links) == ["checkpoint", "html", "pdf"]
    assert "not notified" in done.err
    (entry,) = entries(ledger_url, "report-published")
    assert entry["notified"] is False
    assert expected_reason in entry["reason"]
    for secret in (S3_SECRET, SMTP_PASSWORD):
        assert secret not in done.out + done.err + raw_ledger(ledger_url)


@pytest.mark.tools
def test_a_refusing_s3_exits_4_and_keeps_the_report_locally(
    cli: Cli,
    edit_contract: EditContract,
    s3_keys: tuple[str, str],
    private_var: Path,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    """A target whose bucket does not exist: exit 4 naming the bucket and the local
    folder; the report's files and report-written stay, no report-published entry."""
    with moto_endpoint("127.0.0.1", tmp_path / "moto.log") as endpoint:
        configure(edit_contract, endpoint, free_port())
        done = cli("report", CLIENT, "--period", PERIOD, "--publish")

    assert done.code == ExitCode.ENVIRONMENT, done
    folder = report_folder(private_var)
    assert f"kept locally at {folder}" in done.err
    assert f"bucket {BUCKET} does not exist" in done.err
    assert "Traceback" not in done.err
    assert all((folder / name).is_file() for name in FILES)
    assert len(entries(ledger_url, "report-written")) == 1
    assert entries(ledger_url, "report-published") == []
    assert S3_SECRET not in done.out + done.err


def test_without_credentials_the_report_is_kept_locally_and_exit_is_4(
    cli: Cli,
    edit_contract: EditContract,
    monkeypatch: pytest.MonkeyPatch,
    private_var: Path,
    ledger_url: str,
) -> None:
    """No S3 keys in the environment: exit 4 saying which are missing and where the
    report is kept; its files and report-written stay; nothing is published."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    configure(edit_contract, f"http://127.0.0.1:{free_port()}", free_port())

    done = cli("report", CLIENT, "--period", PERIOD, "--publish")

    assert done.code == ExitCode.ENVIRONMENT, done
    folder = report_folder(private_var)
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set" in done.err
    assert f"kept locally at {folder}" in done.err
    assert "Traceback" not in done.err
    assert all((folder / name).is_file() for name in FILES)
    assert len(entries(ledger_url, "report-written")) == 1
    assert entries(ledger_url, "report-published") == []


def test_without_an_offsite_target_the_report_is_kept_locally_and_exit_is_4(
    cli: Cli, private_var: Path, ledger_url: str
) -> None:
    done = cli("report", CLIENT, "--period", PERIOD, "--publish", "--json")

    assert done.code == ExitCode.ENVIRONMENT, done
    error = json.loads(done.err)
    assert "names no offsite target" in error["error"]
    assert f"kept locally at {report_folder(private_var)}" in error["error"]
    assert entries(ledger_url, "report-published") == []


def test_an_unreachable_s3_is_an_environment_problem_naming_the_local_copy(
    inventories: Path,
    edit_contract: EditContract,
    s3_keys: tuple[str, str],
    private_var: Path,
    ledger_url: str,
) -> None:
    """Nothing listens at the endpoint: EnvironmentProblem (exit 4) saying so, masked,
    and no report-published entry (one quick attempt, not the command's patient ones)."""
    configure(edit_contract, f"http://127.0.0.1:{free_port()}", free_port())
    settings = resolve_settings(inventories=str(inventories), ledger_url=ledger_url)
    written = write_client_report(settings, CLIENT, PERIOD, datetime.now(UTC))
    quick = RetryPolicy(attempts=1, botocore_attempts=1, connect_timeout_s=1.0)

    with pytest.raises(EnvironmentProblem) as raised:
        publish_client_report(settings, CLIENT, written, retry=quick)

    message = raised.value.message
    assert "endpoint unreachable" in message
    assert f"kept locally at {report_folder(private_var)}" in message
    assert S3_SECRET not in message
    assert entries(ledger_url, "report-published") == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mailto://127.0.0.1:25?mode=insecure&to=a@x.example&cc=b@x.example&from=s@x.example",
            "mailto://127.0.0.1:25?mode=insecure&from=s@x.example&to=owner@y.example",
        ),
        (
            "mailtos://u:{vault:webmg_smtp_password}@mail.example/a@x.example/b@x.example",
            "mailtos://u:{vault:webmg_smtp_password}@mail.example?to=owner@y.example",
        ),
    ],
)
def test_the_owner_replaces_every_recipient_of_the_mail_url(url: str, expected: str) -> None:
    assert with_recipient(url, "owner@y.example") == expected
