"""The scoping diagnostic's rules, and the governance gate it opens (no lab needed)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.governance import record_diagnostic

from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import Contract, Level
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.scoping.diagnostic import (
    action_plan,
    assess_fit,
    certificate_expiry,
    os_support,
    recommend_level,
)

FIT = {
    "in_production": True,
    "business_dependency": True,
    "availability_requirements": False,
    "sensitive_data": False,
    "evolution_required": False,
    "stabilized": True,
    "experimental": False,
    "governance_accepted": True,
}


def contract(**changes: Any) -> Contract:
    """Return atelier-nord's kind of contract with the fit answers and fields changed."""
    fit = {**FIT, **changes.pop("fit", {})}
    data: dict[str, Any] = {
        "name": "prospect",
        "display_name": "Prospect",
        "sector": "sme",
        "business_owner": {"name": "Ada Owner"},
        "fit": fit,
        **changes,
    }
    return Contract.model_validate({k: v for k, v in data.items() if v is not None})


# --- fit ---------------------------------------------------------------------


def test_a_production_system_with_business_dependency_is_a_fit() -> None:
    assessed = assess_fit(contract())
    assert assessed.verdict == "fit"
    assert "The system is already in production" in assessed.fit_reasons
    assert "There is real business dependency (continuity required)" in assessed.fit_reasons
    assert assessed.not_fit_reasons == ()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"fit": {"stabilized": False}}, "The project is not stabilized"),
        ({"fit": {"experimental": True}}, "The product is still experimental"),
        ({"business_owner": None}, "There is no business owner"),
        ({"fit": {"governance_accepted": False}}, "Support is expected without governance"),
        ({"fit": {"in_production": False}}, "The system is not in production yet"),
    ],
)
def test_each_not_fit_rule_is_named(changes: dict[str, Any], reason: str) -> None:
    assessed = assess_fit(contract(**changes))
    assert assessed.verdict == "not a fit"
    assert assessed.not_fit_reasons == (reason,)


def test_unanswered_deciding_questions_are_to_clarify() -> None:
    assessed = assess_fit(contract(fit={"stabilized": None, "governance_accepted": None}))
    assert assessed.verdict == "to clarify"
    assert assessed.open_questions == (
        "Is the system stabilized?",
        "Does the client accept governance (windows, approvals, tickets)?",
    )


def test_nothing_to_protect_is_not_a_fit() -> None:
    assessed = assess_fit(contract(fit={"business_dependency": False}))
    assert assessed.verdict == "not a fit"
    assert assessed.not_fit_reasons[0].startswith("No business dependency")


# --- level ---------------------------------------------------------------------


def test_sensitive_data_with_availability_calls_for_the_institutional_sla() -> None:
    recommendation = recommend_level(
        contract(fit={"sensitive_data": True, "availability_requirements": True})
    )
    assert recommendation.level is Level.INSTITUTIONAL_SLA
    assert recommendation.budget_marker == "from $1,500 / month"
    assert recommendation.reasons[0].startswith("criticality")
    assert recommendation.contracted == "prospect"


def test_iterative_delivery_with_business_dependency_calls_for_continuous_evolution() -> None:
    recommendation = recommend_level(contract(fit={"evolution_required": True}))
    assert recommendation.level is Level.CONTINUOUS_EVOLUTION
    assert recommendation.budget_marker == "from $500 / month"
    assert recommendation.reasons[0].startswith("business dependency")


def test_a_website_gets_stability_and_security_and_under_scoping_is_named() -> None:
    recommendation = recommend_level(contract(fit={"business_dependency": False}))
    assert recommendation.level is Level.STABILITY_SECURITY
    assert recommendation.budget_marker == "from $150 / month"
    assert recommendation.reasons[0].startswith("risk tolerance")
    under = recommend_level(
        contract(
            level="stability-security",
            windows=[{"always": True, "timezone": "UTC"}],
            fit={"sensitive_data": True, "availability_requirements": True},
        )
    )
    assert "below the recommended one" in under.note


def test_demo_clients_get_the_level_they_bought() -> None:
    inventories = Path(__file__).resolve().parents[2] / "inventories"
    for name in ("alpenhof", "terre-solidaire", "riverton", "atelier-nord"):
        client = load_client(inventories, name)
        assert assess_fit(client.contract).verdict == "fit", name
        assert recommend_level(client.contract).level is client.contract.level, name


# --- hosts -----------------------------------------------------------------------


def test_os_support_follows_the_debian_calendar() -> None:
    assert os_support("Debian 12.12 (bookworm)", date(2026, 1, 5))["status"] == "supported"
    lts = os_support("Debian 12.12 (bookworm)", date(2026, 11, 28))
    assert lts["status"] == "lts"
    assert "LTS until 2028-06-30" in lts["detail"]
    assert os_support("Debian 11.9 (bullseye)", date(2026, 11, 28))["status"] == "ended"
    assert os_support("Ubuntu 24.04 (noble)", date(2026, 11, 28))["status"] == "unknown"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve HTTPS on loopback with a self-signed certificate valid for 5 more days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=5, hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = tmp_path / "cert.pem"
    key_file = tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/health", cert_file
    finally:
        server.shutdown()
        server.server_close()


def test_certificate_expiry_is_read_from_the_server(tls_server: tuple[str, Path]) -> None:
    url, cafile = tls_server
    found = certificate_expiry(url, cafile=str(cafile))
    assert found["status"] == "valid"
    assert found["days_left"] == 5
    plan = action_plan(
        assess_fit(contract()),
        recommend_level(contract()),
        {},
        {},
        {"last_backup": "x", "last_drill": "y"},
        [found],
    )
    assert [(item.priority, item.action) for item in plan] == [(1, "Renew the certificate")]


def test_plain_http_and_untrusted_certificates_are_findings(tls_server: tuple[str, Path]) -> None:
    assert certificate_expiry("http://198.18.0.41/health")["status"] == "no-tls"
    untrusted = certificate_expiry(tls_server[0])
    assert untrusted["status"] == "error"
    assert "certificate verify failed" in untrusted["detail"]


def test_action_plan_puts_scoping_and_data_first() -> None:
    hosts = {
        "web1": {
            "os_support": {"status": "lts", "detail": "LTS until 2028-06-30"},
            "pending_updates": {"security": 2},
            "disks": [{"mount": "/", "used_percent": 91}],
            "listening_ports": [
                {"protocol": "tcp", "address": "0.0.0.0", "port": 5432},
                {"protocol": "tcp", "address": "0.0.0.0", "port": 22},
            ],
        }
    }
    compliance = {"hosts": {"web1": {"score": {"percent": 31.7}}}}
    stalled = contract(fit={"stabilized": False})
    plan = action_plan(assess_fit(stalled), recommend_level(stalled), hosts, compliance, {}, [])
    findings = [(item.priority, item.area, item.finding) for item in plan]
    assert findings[0] == (1, "data", "no verified backup on record")
    assert (1, "scoping", "The project is not stabilized") in findings
    assert (1, "security", "security updates pending") in findings
    assert (2, "security", "compliance 32% (target 80%)") in findings
    assert (2, "operations", "disk / nearly full") in findings
    assert (3, "security", "tcp/5432 listens on every interface") in findings
    assert not any("tcp/22" in finding for _p, _a, finding in findings)
    assert [item.priority for item in plan] == sorted(item.priority for item in plan)


# --- contract and governance --------------------------------------------------------


def make_prospect(data: dict[str, Any]) -> None:
    """Turn a demo contract into a prospect's: no level, owner or windows; not stabilized."""
    for key in ("level", "business_owner", "windows", "escalation", "cadences", "targets"):
        data.pop(key, None)
    data["fit"]["stabilized"] = False


def test_a_prospect_validates_and_shows_as_prospect(
    cli: Callable[..., Any], edit_contract: Callable[..., Path]
) -> None:
    edit_contract("atelier-nord", make_prospect)
    assert cli("validate", "atelier-nord").code == ExitCode.OK
    policy = cli("policy", "atelier-nord", "--json")
    assert policy.code == ExitCode.OK, policy
    assert json.loads(policy.out)["level"] == "prospect"


def test_a_level_needs_a_business_owner_and_a_window(
    cli: Callable[..., Any], edit_contract: Callable[..., Path]
) -> None:
    def owner_and_windows_gone(data: dict[str, Any]) -> None:
        del data["business_owner"]
        del data["windows"]

    file = edit_contract("atelier-nord", owner_and_windows_gone)
    done = cli("validate", "atelier-nord")
    assert done.code == ExitCode.BAD_INPUT
    line = file.read_text().splitlines().index("level: stability-security") + 1
    assert f"{file}:{line}: level: a contract with a level needs a business_owner" in done.err
    assert "a contract with a level needs at least one window" in done.err
    assert "Traceback" not in done.err


def test_a_prospect_is_refused_every_change_even_in_an_emergency(
    cli: Callable[..., Any], edit_contract: Callable[..., Path], ledger_url: str
) -> None:
    edit_contract("atelier-nord", make_prospect)
    done = cli("plan", "atelier-nord", "update", "--emergency", "--reason", "zero-day")
    assert done.code == ExitCode.REFUSED
    assert "atelier-nord is a prospect (no level in client.yml)" in done.out + done.err
    assert "only check, diagnose may run" in done.out + done.err
    assert cli("plan", "atelier-nord", "diagnose").code == ExitCode.OK


def test_changes_wait_for_a_diagnostic_on_record(cli: Callable[..., Any], ledger_url: str) -> None:
    cli("ledger", "verify")  # creates the ledger
    for action in ("update", "harden"):
        done = cli("plan", "atelier-nord", action)
        assert done.code == ExitCode.REFUSED, done
        assert "has no diagnostic on record" in done.out + done.err
    assert cli("plan", "atelier-nord", "harden", "--check").code == ExitCode.OK
    emergency = cli("plan", "atelier-nord", "update", "--emergency", "--reason", "zero-day")
    assert emergency.code == ExitCode.OK, emergency
    with open_ledger(ledger_url) as ledger:
        record_diagnostic(ledger, "atelier-nord")
    assert cli("plan", "atelier-nord", "update").code == ExitCode.OK


def test_a_system_not_stabilized_is_refused_changes_despite_a_diagnostic(
    cli: Callable[..., Any], edit_contract: Callable[..., Path], ledger_url: str
) -> None:
    edit_contract("atelier-nord", lambda data: data["fit"].update(stabilized=False))
    cli("ledger", "verify")
    with open_ledger(ledger_url) as ledger:
        record_diagnostic(ledger, "atelier-nord")
    done = cli("plan", "atelier-nord", "update")
    assert done.code == ExitCode.REFUSED
    assert "atelier-nord is not stabilized (client.yml fit.stabilized: false)" in (
        done.out + done.err
    )
