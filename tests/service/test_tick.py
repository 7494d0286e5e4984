"""``webmg-ops tick`` against real receivers: an SMTP server (aiosmtpd) and an HTTP
webhook receiver (``http.server``), both on 127.0.0.1, and a real ledger (SQLite and
PostgreSQL).

Promises proved here: tick sends each due escalation notification exactly once across
repeated ticks, and records each send (``notification-sent``) and each clock's breach
(``incident-clock-breached``) once; a receiver that is down makes the notification
pending (recorded, exit 1) and the next tick delivers it once it is up; two ticks at
once never both send; a secret in a notification URL, read from the client's vault,
reaches the receiver and never the ledger, the output or the logs; a step that names
no target is notified through the agency's on-call targets, with the agency's vault;
an unknown client, a bad ``--at`` and an unsupported URL scheme are exit 2 with the
reason, nothing written.

The incident is riverton's (institutional-sla, clocks 24/7): a P1's response budget is
20 minutes, thresholds 50/75/100 %, escalation steps after 15 min, 30 min and 1 h.
Expected deliveries are worked out by hand from those numbers.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from support.mailbox import Mailbox, free_port, mailbox
from support.service import ledger_url, open_incident, service_postgres
from support.waiting import wait_until

from webmg_ops.ansible.vault import encrypt_bytes
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.service.tick import tick
from webmg_ops.settings import resolve_settings

# Fixtures of the service tests: every test here runs on SQLite and on PostgreSQL.
__all__ = ["ledger_url", "mailbox", "service_postgres"]

Cli = Callable[..., Any]
EditContract = Callable[[str, Callable[[dict[str, Any]], None]], Path]

MINUTE = timedelta(minutes=1)
CANARY = "Cnry7f3Qx9" + os.urandom(8).hex()
VAULT_PASSWORD = b"vault-password-of-the-tick-tests"


class Webhook:
    """An HTTP receiver on 127.0.0.1 recording each POST: path, Authorization, JSON body.

    Its port is chosen at once; it listens only once started, so that a test can first
    find it down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass  # the test reads what was received, not the server's log

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def titles(self, path: str) -> list[str]:
        return [item["body"]["title"] for item in self.received if item["path"] == path]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def vault_file(inventories: Path, tmp_path: Path) -> Path:
    """Riverton's vault holds the webhook's password (the canary); return the password file."""
    vault = inventories / "riverton" / "group_vars" / "all" / "vault.yml"
    vault.write_bytes(encrypt_bytes(f"webmg_hook_token: {CANARY}\n".encode(), VAULT_PASSWORD))
    password = tmp_path / "vault-password"
    password.write_bytes(VAULT_PASSWORD)
    password.chmod(0o600)
    return password


def escalate_to(edit_contract: EditContract, webhook: Webhook, smtp_port: int) -> None:
    """Riverton's first step notifies the webhook (its password from the vault) and an
    address by e-mail; the second step a webhook path of its own."""
    hook = f"json://webmg:{{vault:webmg_hook_token}}@127.0.0.1:{webhook.port}/oncall"
    mail = (
        f"mailto://127.0.0.1:{smtp_port}?mode=insecure&from=webmg@agency.example"
        "&to=oncall@riverton.example"
    )
    second = f"json://127.0.0.1:{webhook.port}/security"

    def change(data: dict[str, Any]) -> None:
        data["escalation"][0]["notify"] = [hook, mail]
        data["escalation"][1]["notify"] = [second]

    edit_contract("riverton", change)


def entries(ledger_url: str) -> list[tuple[str, dict[str, Any]]]:
    with open_ledger(ledger_url, create=False) as ledger:
        return [(entry.kind, dict(entry.payload)) for entry in ledger.entries()]


def raw_ledger(ledger_url: str) -> str:
    with open_ledger(ledger_url, create=False) as ledger:
        return "\n".join(
            f"{e.kind} {e.client} {e.actor} {e.payload_json}" for e in ledger.entries()
        )


def open_p1(cli: Cli) -> tuple[str, datetime]:
    document = open_incident(cli, "riverton")
    return document["id"], datetime.fromisoformat(document["opened_at"])


def run_tick(cli: Cli, at: datetime, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = cli("tick", "--at", at.isoformat(), "--json", *extra)
    document = json.loads(done.out) if done.out.strip() else {}
    return done.code, document, done.out + done.err


def test_each_notification_reaches_its_receiver_exactly_once_across_ticks(
    cli: Cli,
    edit_contract: EditContract,
    webhook: Webhook,
    mailbox: tuple[Mailbox, int],
    vault_file: Path,
    ledger_url: str,
) -> None:
    """Repeated ticks at 11 and at 31 minutes: each threshold and step reaches the webhook
    and the mailbox once, and each send and the breach are recorded once."""
    box, smtp_port = mailbox
    escalate_to(edit_contract, webhook, smtp_port)
    webhook.start()
    incident_id, opened = open_p1(cli)
    vault = ("--vault-password-file", str(vault_file))

    # 11 minutes: past 50 % of the 20-minute response; no step yet (first at 15).
    for _ in range(3):
        code, _document, _output = run_tick(cli, opened + 11 * MINUTE, *vault)
        assert code == ExitCode.OK
    assert webhook.titles("/oncall") == [
        f"[riverton] {incident_id} P1: response clock reached 50% of its 20m budget "
        f"(due {(opened + 20 * MINUTE).isoformat()})"
    ]
    assert [m["to"] for m in box.messages] == [["oncall@riverton.example"]]
    assert webhook.titles("/security") == []

    # 31 minutes: 75 % and the breach (past 20), and steps 1 (15 min) and 2 (30 min).
    for _ in range(2):
        code, _document, _output = run_tick(cli, opened + 31 * MINUTE, *vault)
        assert code == ExitCode.OK
    oncall = webhook.titles("/oncall")
    assert len(oncall) == 4 and len(box.messages) == 4
    assert "response clock reached 75%" in oncall[1]
    assert "response clock past 100% of its 20m budget" in oncall[2]
    assert "escalation step 1" in oncall[3]
    assert [title.split(": ", 1)[1] for title in webhook.titles("/security")] == [
        "escalation step 2 (security officer, Dana Whitfield): not fixed after 30m of SLA time"
    ]
    # The webhook's password was read from the vault and sent as Basic authentication.
    expected = "Basic " + base64.b64encode(f"webmg:{CANARY}".encode()).decode()
    assert {item["authorization"] for item in webhook.received if item["path"] == "/oncall"} == {
        expected
    }

    recorded = entries(ledger_url)
    sent = [payload["key"] for kind, payload in recorded if kind == "notification-sent"]
    seq = incident_id.removeprefix("INC-")
    assert sorted(sent) == sorted(
        [
            *(f"INC-{seq}/response/{share}%/step-1/{n}" for share in (50, 75, 100) for n in (1, 2)),
            f"INC-{seq}/after/step-1/1",
            f"INC-{seq}/after/step-1/2",
            f"INC-{seq}/after/step-2/1",
        ]
    )
    breaches = [payload for kind, payload in recorded if kind == "incident-clock-breached"]
    assert [(b["incident"], b["clock"]) for b in breaches] == [(int(seq), "response")]
    assert all(kind != "notification-pending" for kind, _payload in recorded)

    # The incident's timeline shows the breach and each delivery, in the ledger's order.
    shown = cli("incident", "show", incident_id, "--at", (opened + 31 * MINUTE).isoformat())
    assert shown.code == ExitCode.OK, shown
    timeline = json.loads(cli("incident", "show", incident_id, "--json").out)["timeline"]
    expected = [
        (kind, payload.get("clock") or payload["target"])
        for kind, payload in recorded
        if kind in ("incident-clock-breached", "notification-sent")
    ]
    assert [
        (event["kind"], event.get("clock") or event["target"])
        for event in timeline
        if event["kind"] != "incident-opened"
    ] == expected
    assert "response clock breached (due" in shown.err
    assert f"127.0.0.1:{webhook.port}/security" in shown.err


def test_a_receiver_that_is_down_leaves_the_notification_pending_until_it_is_up(
    cli: Cli,
    edit_contract: EditContract,
    webhook: Webhook,
    mailbox: tuple[Mailbox, int],
    vault_file: Path,
    ledger_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A webhook that is down: pending (recorded, exit 1) and retried by each tick until it
    is up, then delivered once; the e-mail goes once; the vault's canary never leaks."""
    box, smtp_port = mailbox
    escalate_to(edit_contract, webhook, smtp_port)
    incident_id, opened = open_p1(cli)
    at = opened + 11 * MINUTE
    vault = ("--vault-password-file", str(vault_file))
    caplog.set_level(logging.DEBUG)

    # The webhook is down: the e-mail goes, the webhook's notification is pending, exit 1.
    code, document, output = run_tick(cli, at, *vault)
    assert code == ExitCode.FAILED
    outcomes = {item["key"].rsplit("/", 1)[1]: item for item in document["notifications"]}
    assert (outcomes["1"]["outcome"], outcomes["2"]["outcome"]) == ("pending", "sent")
    assert outcomes["1"]["target"] == f"json://webmg:********@127.0.0.1:{webhook.port}/oncall"
    assert len(box.messages) == 1
    pending = [payload for kind, payload in entries(ledger_url) if kind == "notification-pending"]
    assert [payload["key"] for payload in pending] == [f"{incident_id}/response/50%/step-1/1"]
    assert pending[0]["error"]

    # Still down: pending again, nothing lost, the e-mail not sent twice.
    code, _document, more_output = run_tick(cli, at + MINUTE, *vault)
    assert code == ExitCode.FAILED and len(box.messages) == 1

    webhook.start()
    code, document, last_output = run_tick(cli, at + 2 * MINUTE, *vault)
    assert code == ExitCode.OK
    assert [item["key"] for item in document["notifications"]] == [
        f"{incident_id}/response/50%/step-1/1"
    ]
    assert wait_until(lambda: len(webhook.received) == 1, timeout_s=10)
    assert webhook.titles("/oncall")[0].startswith(f"[riverton] {incident_id} P1: response")
    code, document, _output = run_tick(cli, at + 3 * MINUTE, *vault)
    assert (code, document["notifications"]) == (ExitCode.OK, [])
    assert len(webhook.received) == 1 and len(box.messages) == 1

    # The incident's timeline shows each delivery: pending twice (with why), then sent.
    shown = cli("incident", "show", incident_id, "--json")
    deliveries = [
        (event["kind"], event["target"], bool(event.get("error")))
        for event in json.loads(shown.out)["timeline"]
        if event["kind"].startswith("notification-") and event["target"].startswith("json://")
    ]
    masked = f"json://webmg:********@127.0.0.1:{webhook.port}/oncall"
    assert deliveries == [
        ("notification-pending", masked, True),
        ("notification-pending", masked, True),
        ("notification-sent", masked, False),
    ]

    # The canary (the webhook's password) reached the receiver only.
    for name, text in {
        "ledger": raw_ledger(ledger_url),
        "output": output + more_output + last_output + shown.out + shown.err,
        "logs": caplog.text,
    }.items():
        assert leaked(text, CANARY) == [], name


def test_a_step_without_targets_is_notified_through_the_agencys_on_call_targets(
    cli: Cli,
    edit_contract: EditContract,
    webhook: Webhook,
    vault_file: Path,
    inventories: Path,
    ledger_url: str,
) -> None:
    """Riverton's first step names its own webhook; its second names none, so it goes to
    the agency's on-call target (its own contract's first step), whose password is read
    from the agency's vault, never the client's; neither password is recorded."""
    agency_canary = "Agncy4kT" + os.urandom(8).hex()
    vault = inventories / "agency" / "group_vars" / "all" / "vault.yml"
    vault.write_bytes(
        encrypt_bytes(f"agency_hook_token: {agency_canary}\n".encode(), VAULT_PASSWORD)
    )
    agency_hook = f"json://ops:{{vault:agency_hook_token}}@127.0.0.1:{webhook.port}/agency"
    own_hook = f"json://webmg:{{vault:webmg_hook_token}}@127.0.0.1:{webhook.port}/oncall"

    def agency_on_call(data: dict[str, Any]) -> None:
        data["escalation"][0]["notify"] = [agency_hook]

    def only_the_first_step_names_targets(data: dict[str, Any]) -> None:
        data["escalation"][0]["notify"] = [own_hook]
        for step in data["escalation"][1:]:
            step.pop("notify", None)

    edit_contract("agency", agency_on_call)
    edit_contract("riverton", only_the_first_step_names_targets)
    webhook.start()
    incident_id, opened = open_p1(cli)

    # 31 minutes: thresholds 50, 75, 100 % and step 1 to riverton's own webhook; step 2
    # (30 min) to the agency's; step 3 (1 h) not yet.
    code, _document, output = run_tick(
        cli, opened + 31 * MINUTE, "--vault-password-file", str(vault_file)
    )
    assert code == ExitCode.OK, output
    assert len(webhook.titles("/oncall")) == 4
    assert [title.split(": ", 1)[1] for title in webhook.titles("/agency")] == [
        "escalation step 2 (security officer, Dana Whitfield): not fixed after 30m of SLA time"
    ]
    authorizations = {item["path"]: item["authorization"] for item in webhook.received}
    assert authorizations == {
        "/oncall": "Basic " + base64.b64encode(f"webmg:{CANARY}".encode()).decode(),
        "/agency": "Basic " + base64.b64encode(f"ops:{agency_canary}".encode()).decode(),
    }
    sent = {
        payload["key"]: payload["target"]
        for kind, payload in entries(ledger_url)
        if kind == "notification-sent"
    }
    assert sent[f"{incident_id}/after/step-2/1"] == (
        f"json://ops:********@127.0.0.1:{webhook.port}/agency"
    )
    for secret in (CANARY, agency_canary):
        assert leaked(raw_ledger(ledger_url) + output, secret) == []


def leaked(text: str, secret: str) -> list[str]:
    """Return the forms of the secret found in the text."""
    raw = secret.encode()
    forms = {
        "plain": secret,
        "upper": secret.upper(),
        "lower": secret.lower(),
        "url-quoted": quote(secret, safe=""),
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "basic-auth": base64.b64encode(f"webmg:{secret}".encode()).decode(),
    }
    return [name for name, form in forms.items() if form in text]


def test_two_ticks_at_once_never_both_send(
    cli: Cli,
    edit_contract: EditContract,
    webhook: Webhook,
    mailbox: tuple[Mailbox, int],
    vault_file: Path,
    ledger_url: str,
    inventories: Path,
) -> None:
    """Each of four ticks started together claims under the ledger's write lock: every
    delivery is made by one of them only."""
    box, smtp_port = mailbox
    escalate_to(edit_contract, webhook, smtp_port)
    webhook.start()
    _incident_id, opened = open_p1(cli)
    settings = resolve_settings(inventories=str(inventories), ledger_url=ledger_url)
    from webmg_ops.ansible.vault import Vault

    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def one_tick() -> None:
        try:
            start.wait()
            results.append(tick(settings, now=opened + 31 * MINUTE, vault=Vault(vault_file)))
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=one_tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    sent = [item["key"] for result in results for item in result["notifications"]]
    assert len(sent) == len(set(sent)) == 9  # 3 thresholds x 2 + step 1 x 2 + step 2
    assert len(webhook.received) == 4 + 1 and len(box.messages) == 4
    kinds = [kind for kind, _payload in entries(ledger_url)]
    assert kinds.count("notification-claimed") == kinds.count("notification-sent") == 9
    assert kinds.count("incident-clock-breached") == 1


def test_an_unknown_client_is_refused_and_nothing_is_written(cli: Cli, ledger_url: str) -> None:
    """``tick CLIENT`` for a client not in the inventories: exit 2 with the reason, no entry."""
    _incident_id, opened = open_p1(cli)
    before = entries(ledger_url)
    done = cli("tick", "nowhere", "--at", (opened + 40 * MINUTE).isoformat())
    assert done.code == ExitCode.BAD_INPUT
    assert "Error: unknown client 'nowhere'" in done.err and "Traceback" not in done.err
    assert entries(ledger_url) == before


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("yesterday", "--at 'yesterday' is not an ISO 8601 time"),
        ("2026-12-01T09:00", "--at '2026-12-01T09:00' needs a UTC offset"),
    ],
)
def test_a_bad_at_is_refused_and_nothing_is_written(
    cli: Cli, ledger_url: str, at: str, message: str
) -> None:
    """An ``--at`` that is not an ISO 8601 time with an offset: exit 2 with the reason, no entry."""
    open_p1(cli)
    before = entries(ledger_url)
    done = cli("tick", "--at", at)
    assert done.code == ExitCode.BAD_INPUT
    assert message in done.err and "Traceback" not in done.err
    assert entries(ledger_url) == before


def test_an_unsupported_scheme_stops_the_tick_before_anything_is_written(
    cli: Cli, edit_contract: EditContract, ledger_url: str
) -> None:
    """A breach is due (40 minutes into a 20-minute response): still nothing is recorded
    while riverton's contract names an unsupported scheme."""
    _incident_id, opened = open_p1(cli)
    before = entries(ledger_url)
    edit_contract(
        "riverton",
        lambda data: data["escalation"][0].update(notify=["ftp://files.riverton.example/x"]),
    )
    done = cli("tick", "--at", (opened + 40 * MINUTE).isoformat())
    assert done.code == ExitCode.BAD_INPUT
    assert "notification URL scheme ftp:// is not supported" in done.err
    assert entries(ledger_url) == before
