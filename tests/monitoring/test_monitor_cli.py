"""``webmg-ops monitor`` as an operator runs it: ``--once`` records a sample per check
and exits 0 whatever the services answered; bad input exits 2 and writes nothing; the
long-running monitor (a real subprocess) serves ``/metrics`` on loopback with the
expected series, and SIGTERM stops it with every sample taken stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.http_services import Route, make_certificates, serve
from support.waiting import wait_until

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, read_samples, store_samples
from webmg_ops.service.incident_commands import open_incident
from webmg_ops.settings import Settings

Cli = Callable[..., Any]


@pytest.fixture
def portals(tmp_path: Path, edit_contract: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Serve riverton's two portal nodes on loopback, node 1 over HTTPS (a CA of the
    test's own), node 2 over HTTP and failing; point riverton's checks at them."""
    certificates = make_certificates(tmp_path)
    with (
        serve({"/health": Route()}, tls=certificates.server_context) as node1,
        serve({"/health": Route(status=502)}) as node2,
    ):
        edit_contract(
            "riverton",
            lambda data: data.update(
                health_checks=[
                    {"name": "node 1", "url": node1.url("/health")},
                    {"name": "node 2", "url": node2.url("/health")},
                ]
            ),
        )
        yield {"node1": node1, "node2": node2, "certificates": certificates}


def test_once_records_a_sample_per_check_and_exits_0(
    cli: Cli, portals: dict[str, Any], ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(portals["certificates"].ca_file))
    done = cli("monitor", "riverton", "--once", "--json")
    # A service down is data, not a failure of the command.
    assert done.code == ExitCode.OK, done
    document = json.loads(done.out)
    by_check = {sample["check"]: sample for sample in document["samples"]}
    assert by_check["node 1"]["up"] and by_check["node 1"]["cert_days"] > 9
    assert not by_check["node 2"]["up"] and by_check["node 2"]["cause"] == "bad-status"
    with open_ledger(ledger_url) as ledger:
        stored = read_samples(ledger, "riverton")
    assert sorted((s.check, s.up) for s in stored) == [("node 1", True), ("node 2", False)]


def test_once_for_every_client_probes_the_valid_ones_then_reports_the_invalid_one(
    cli: Cli,
    portals: dict[str, Any],
    inventories: Path,
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(portals["certificates"].ca_file))
    contract = inventories / "terre-solidaire" / "client.yml"
    lines = contract.read_text().splitlines()
    line = lines.index("level: continuous-evolution") + 1
    lines[line - 1] = "level: gold"
    contract.write_text("\n".join(lines) + "\n")
    done = cli("monitor", "--once", "--json")
    assert done.code == ExitCode.BAD_INPUT, done
    probed = {(sample["client"], sample["check"]) for sample in json.loads(done.out)["samples"]}
    assert {("riverton", "node 1"), ("riverton", "node 2")} <= probed
    assert "terre-solidaire" not in {client for client, _check in probed}
    assert f"{contract}:{line}: level" in json.loads(done.err)["error"]
    with open_ledger(ledger_url) as ledger:
        assert len(read_samples(ledger, "riverton")) == 2


def _interval(cli: Cli, client: str) -> timedelta:
    """Return CLIENT's probe interval as ``policy`` shows it (``1m``, ``5m``, ``15m``)."""
    done = cli("policy", client, "--json")
    assert done.code == ExitCode.OK, done
    value = json.loads(done.out)["settings"]["monitoring.interval"]["value"]
    units = {"s": "seconds", "m": "minutes", "h": "hours"}
    return timedelta(**{units[value[-1]]: int(value[:-1])})


def test_once_due_probes_only_the_checks_whose_interval_has_passed(
    cli: Cli,
    portals: dict[str, Any],
    edit_contract: Callable[..., Any],
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(portals["certificates"].ca_file))
    site = portals["node2"].url("/health")
    edit_contract(
        "terre-solidaire", lambda data: data.update(health_checks=[{"name": "site", "url": site}])
    )
    fast, slow = _interval(cli, "riverton"), _interval(cli, "terre-solidaire")
    # Both clients were sampled 45 s ago: riverton's interval (1m) is passed but for the
    # half-minute a round may drift; terre-solidaire's (5m) is not.
    assert fast - timedelta(seconds=30) <= timedelta(seconds=45) < slow - timedelta(seconds=30)
    ago = datetime.now(UTC) - timedelta(seconds=45)
    taken = [
        Sample(client, check, ago, up=True)
        for client, check in (
            ("riverton", "node 1"),
            ("riverton", "node 2"),
            ("terre-solidaire", "site"),
        )
    ]
    with open_ledger(ledger_url) as ledger:
        store_samples(ledger, taken)

    def probed() -> set[tuple[str, str]]:
        done = cli("monitor", "riverton", "terre-solidaire", "--once", "--due", "--json")
        assert done.code == ExitCode.OK, done
        return {(sample["client"], sample["check"]) for sample in json.loads(done.out)["samples"]}

    assert probed() == {("riverton", "node 1"), ("riverton", "node 2")}
    # Just sampled: nothing is due again.
    assert probed() == set()
    with open_ledger(ledger_url) as ledger:
        assert len(read_samples(ledger, "riverton")) == 4
        assert len(read_samples(ledger, "terre-solidaire")) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("monitor", "nowhere", "--once"), "nowhere"),
        (("monitor", "atelier-nord", "--once"), "monitors no availability"),
        (("monitor", "riverton", "--metrics", "0.0.0.0:9464"), "loopback"),
        (("monitor", "riverton", "--metrics", "9464"), "HOST:PORT"),
        (("monitor", "riverton", "--once", "--metrics", "127.0.0.1:9464"), "--once"),
        (("monitor", "riverton", "--due"), "needs --once"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    cli: Cli, ledger_url: str, arguments: tuple[str, ...], message: str
) -> None:
    done = cli(*arguments)
    assert done.code == ExitCode.BAD_INPUT, done
    assert message in done.err
    assert "Traceback" not in done.err
    assert not Path(ledger_url.removeprefix("sqlite:///")).exists()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class _Lines:
    """Collects a stream's lines in a thread, so a test can wait for one."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def find(self, text: str) -> str | None:
        return next((line for line in self.lines if text in line), None)


def test_sigterm_stops_the_monitor_with_its_samples_and_metrics_answer(
    tmp_path: Path, inventories: Path, portals: dict[str, Any]
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'var' / 'ledger.db'}"
    # A backup two hours ago: /metrics gives its age, computed here from the entry.
    with open_ledger(ledger_url) as ledger:
        backup = ledger.append(
            "run-finished",
            "riverton",
            {"run_id": "r-backup", "action": "backup", "outcome": "succeeded", "check": False},
            at=datetime.now(UTC) - timedelta(hours=2),
        )
    # One open incident: /metrics counts it under the severity its entry records.
    settings = Settings(inventories=inventories, ledger_url=ledger_url, var_dir=tmp_path / "var")
    opened = open_incident(
        settings, "riverton", title="portal slow", impact="availability", criticality="critical"
    )
    environment = {
        **os.environ,
        "WEBMG_VAR": str(tmp_path / "var"),
        "SSL_CERT_FILE": str(portals["certificates"].ca_file),
    }
    command = [
        sys.executable,
        "-m",
        "webmg_ops.cli.main",
        "--inventories",
        str(inventories),
        "--ledger",
        ledger_url,
        "monitor",
        "riverton",
        "--metrics",
        "127.0.0.1:0",
        "--json",
    ]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        errors = _Lines(process.stderr)
        assert wait_until(lambda: errors.find("/metrics") is not None, 60), errors.lines
        announced = errors.find("/metrics") or ""
        metrics_url = announced[announced.index("http://") :].strip()
        last_probe = "webmg_check_last_probe_timestamp_seconds"
        # Both checks probed (the first round is spread over a few seconds).
        assert wait_until(
            lambda: sum(1 for key in _scrape(metrics_url) if key[0] == last_probe) == 2, 30
        )
        series = _scrape(metrics_url)
        # SIGTERM at once: the samples just taken may not be flushed yet.
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == ExitCode.OK, errors.lines
    node1 = (("check", "node 1"), ("client", "riverton"))
    node2 = (("check", "node 2"), ("client", "riverton"))
    assert series[("webmg_check_up", node1)] == 1
    assert series[("webmg_check_up", node2)] == 0
    assert 0 < series[("webmg_check_latency_seconds", node1)] < 2
    expected_days = (portals["certificates"].not_after - datetime.now(UTC)).days
    assert int(series[("webmg_check_certificate_days_left", node1)]) == expected_days
    riverton = (("client", "riverton"),)
    for severity in ("P1", "P2", "P3"):
        labels = (("client", "riverton"), ("severity", severity))
        expected = 1 if severity == opened["severity"] else 0
        assert series[("webmg_client_open_incidents", labels)] == expected
    # No drill recorded: riverton's weekly drill is overdue.
    assert series[("webmg_client_drills_overdue", riverton)] == 1
    age = series[("webmg_client_last_backup_age_seconds", riverton)]
    assert abs(age - (datetime.now(UTC) - backup.at).total_seconds()) < 60
    # Every sample taken before the signal is in the database, as the monitor counted.
    document = json.loads(out)
    with open_ledger(ledger_url) as ledger:
        stored = read_samples(ledger, "riverton")
    assert document["samples_stored"] == len(stored) >= 2
    assert {s.check for s in stored} == {"node 1", "node 2"}
