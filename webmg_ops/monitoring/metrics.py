"""``/metrics`` of the monitor, for the agency's own dashboards and alerting (Prometheus).

Per client and check, from the probes: up, latency, certificate days left, page
weight and its budget, time of the last probe. Per client, read from the ledger at
each scrape (what ``due`` and ``incident list`` compute): open incidents by
severity, restore drills overdue, age of the last successful backup.

The endpoint listens on a loopback address only: it names clients and their
services, and the agency's Prometheus scrapes it on the same machine (or through
a tunnel or proxy it chooses).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from webmg_ops.config.clients import Client
from webmg_ops.config.contract import PRIORITIES
from webmg_ops.errors import BadInput, EnvironmentProblem, WebmgError
from webmg_ops.ledger import LedgerReader, open_ledger
from webmg_ops.ledger.samples import Sample
from webmg_ops.schedule.due import clients_due
from webmg_ops.service.incidents import INCIDENT_KINDS, fold_incidents
from webmg_ops.settings import Settings

log = logging.getLogger(__name__)

#: Where ``/metrics`` listens unless told otherwise (Prometheus's range for exporters).
DEFAULT_ADDRESS = "127.0.0.1:9464"
_LOCALHOST = "localhost"


def parse_address(text: str) -> tuple[str, int]:
    """Given ``HOST:PORT`` (``[::1]:PORT`` for IPv6), return the host and port.

    Raise BadInput unless the host is a loopback address (or ``localhost``) and the
    port a number from 1 to 65535 (0 asks the system for a free one, for tests).
    """
    host, separator, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise BadInput(f"--metrics {text!r}: expected HOST:PORT, e.g. {DEFAULT_ADDRESS}")
    if host != _LOCALHOST:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise BadInput(
                f"--metrics {text!r}: metrics are served on a loopback address only "
                "(127.0.0.1, ::1 or localhost); a proxy may publish them further"
            )
    return host, int(port_text)


class _LedgerCollector(Collector):
    """The per-client series read from the ledger at each scrape."""

    def __init__(self, settings: Settings, clients: Sequence[Client]) -> None:
        self.settings = settings
        self.clients = list(clients)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        incidents = GaugeMetricFamily(
            "webmg_client_open_incidents",
            "Open incidents of the client, by severity.",
            labels=["client", "severity"],
        )
        drills = GaugeMetricFamily(
            "webmg_client_drills_overdue",
            "1 when the client's restore drill is overdue (its cadence elapsed), else 0.",
            labels=["client"],
        )
        backup_age = GaugeMetricFamily(
            "webmg_client_last_backup_age_seconds",
            "Seconds since the client's last successful backup run.",
            labels=["client"],
        )
        try:
            with open_ledger(self.settings.ledger_url, create=False, missing_ok=True) as ledger:
                self._fill(ledger, incidents, drills, backup_age)
        except WebmgError as error:
            # A scrape answers what it can: the probes' series stay valid.
            log.error("metrics: cannot read the ledger: %s", error)
        yield from (incidents, drills, backup_age)

    def _fill(
        self,
        ledger: LedgerReader,
        incidents: GaugeMetricFamily,
        drills: GaugeMetricFamily,
        backup_age: GaugeMetricFamily,
    ) -> None:
        now = datetime.now(UTC)
        for client in self.clients:
            counts = dict.fromkeys(PRIORITIES, 0)
            entries = ledger.entries(client=client.name, kinds=INCIDENT_KINDS)
            for incident in fold_incidents(entries).values():
                if incident.is_open:
                    counts[incident.severity] = counts.get(incident.severity, 0) + 1
            for severity, count in counts.items():
                incidents.add_metric([client.name, severity], count)
        for due in clients_due(ledger, self.clients, now):
            for action in due.actions:
                if action.action == "drill":
                    drills.add_metric([due.client.name], 1 if action.due else 0)
                if action.action == "backup" and action.last_success is not None:
                    age = (now - action.last_success).total_seconds()
                    backup_age.add_metric([due.client.name], age)


class MonitorMetrics:
    """The monitor's registry: probe series set by :meth:`observe`, ledger series read
    at each scrape."""

    def __init__(self, settings: Settings, clients: Sequence[Client]) -> None:
        self.registry = CollectorRegistry()
        labels = ["client", "check"]

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, labels, registry=self.registry)

        self.up = gauge("webmg_check_up", "1 when the check's last probe passed, else 0.")
        self.latency = gauge(
            "webmg_check_latency_seconds", "Time to the check's answer at its last probe."
        )
        self.cert_days = gauge(
            "webmg_check_certificate_days_left",
            "Days left on the TLS certificate the check's last probe was served.",
        )
        self.page_bytes = gauge(
            "webmg_check_page_bytes", "Weight of the page and its same-origin assets."
        )
        self.page_budget = gauge(
            "webmg_check_page_budget_bytes", "The contract's budget for the page weight."
        )
        self.last_probe = gauge(
            "webmg_check_last_probe_timestamp_seconds", "When the check was last probed."
        )
        self.registry.register(_LedgerCollector(settings, clients))
        self._server: Any = None

    def observe(self, sample: Sample) -> None:
        """Given a sample just taken, set its check's series."""
        labels = (sample.client, sample.check)
        self.up.labels(*labels).set(1 if sample.up else 0)
        if sample.latency_ms is not None:
            self.latency.labels(*labels).set(sample.latency_ms / 1000)
        if sample.cert_days is not None:
            self.cert_days.labels(*labels).set(sample.cert_days)
        if sample.page_bytes is not None:
            self.page_bytes.labels(*labels).set(sample.page_bytes)
        if sample.page_budget is not None:
            self.page_budget.labels(*labels).set(sample.page_budget)
        self.last_probe.labels(*labels).set(sample.at.timestamp())

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Given a loopback host and a port, serve ``/metrics`` in a background thread;
        return the address bound. Raise EnvironmentProblem if it cannot listen."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise EnvironmentProblem(
                f"cannot serve metrics on {host}:{port}: {error.strerror or error}"
            ) from None
        self._server = server
        bound_host, bound_port = server.server_address[:2]
        return str(bound_host), int(bound_port)

    def close(self) -> None:
        """Stop serving ``/metrics``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
