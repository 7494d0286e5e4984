"""``monitor``'s two ways to run, from settings to a result: once, or until stopped.

Both open the ledger (samples), the service's recorder (incidents) and the
clients' contracts, build the :class:`~webmg_ops.monitoring.monitor.Monitor`,
run it, and return a JSON-ready summary. The command line only parses and prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from webmg_ops.config.clients import Client, ContractInvalid, list_client_names, load_client
from webmg_ops.errors import BadInput
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, latest_sample_times
from webmg_ops.monitoring.metrics import MonitorMetrics
from webmg_ops.monitoring.monitor import Monitor, Target, monitored_targets, probe_interval
from webmg_ops.service.records import derived_recorders
from webmg_ops.settings import Settings
from webmg_ops.yamlsource import SourceProblem

log = logging.getLogger(__name__)


def choose_targets(
    settings: Settings, names: Sequence[str]
) -> tuple[list[Client], list[Target], list[SourceProblem]]:
    """Given the settings and client names (none: every client), return the clients, the
    health checks to probe now, and the problems of the clients left out.

    With no name given, a client whose files are invalid is left out (one broken
    contract must not stop the monitoring of every other client) and its problems are
    returned. Raise BadInput for an unknown client or an invalid contract named, for a
    named client whose level does not monitor availability or that declares no health
    check, and when no client at all has a check to probe (ContractInvalid, listing the
    problems, if some client was left out).
    """
    now = datetime.now(UTC)
    clients: list[Client] = []
    problems: list[SourceProblem] = []
    for name in list(names) or list_client_names(settings.inventories):
        try:
            clients.append(load_client(settings.inventories, name))
        except ContractInvalid as error:
            if names:
                raise
            problems.extend(error.problems)
    targets = monitored_targets(clients, now)
    for client in clients if names else ():
        if not any(target.client is client for target in targets):
            if client.contract.is_prospect:
                why = "is a prospect: its availability is monitored once it has a level"
            elif not client.contract.health_checks:
                why = "declares no health check"
            else:
                why = f"is on {client.contract.level_name}, whose policy monitors no availability"
            raise BadInput(f"{client.name} {why}: nothing to monitor")
    if not targets:
        if problems:
            raise ContractInvalid(problems)
        raise BadInput("no client has a health check to monitor")
    return clients, targets, problems


def sample_document(sample: Sample) -> dict[str, Any]:
    """Given a sample, return it as JSON-ready data."""
    return {
        "client": sample.client,
        "check": sample.check,
        "at": sample.at.isoformat(),
        "up": sample.up,
        "status": sample.status,
        "latency_ms": None if sample.latency_ms is None else round(sample.latency_ms, 1),
        "cert_days": None if sample.cert_days is None else round(sample.cert_days, 2),
        "cause": sample.cause,
        "detail": sample.detail,
        "page_bytes": sample.page_bytes,
        "page_budget": sample.page_budget,
        "planned": sample.planned,
        "planned_by": sample.planned_by,
    }


#: A check is due this much before its interval has passed: rounds started by a
#: minute's clock drift by seconds, and a check must not wait a whole extra round.
DUE_SLACK = timedelta(seconds=30)


def due_targets(
    targets: Sequence[Target], last: Mapping[tuple[str, str], datetime], at: datetime
) -> list[Target]:
    """Given the targets, when each check was last sampled and the instant, return the
    targets due then: never sampled, or sampled at least their client's interval ago
    (less :data:`DUE_SLACK`)."""
    due = []
    for target in targets:
        interval = probe_interval(target.client, at)
        previous = last.get(target.key)
        if interval is None:
            continue
        if previous is None or at - previous >= interval - DUE_SLACK:
            due.append(target)
    return due


def monitor_once(
    settings: Settings, names: Sequence[str], *, due_only: bool = False
) -> tuple[dict[str, Any], list[SourceProblem]]:
    """Given the settings and client names, probe each of their checks once (with
    ``due_only``, only those whose client's interval has passed since their last
    sample: a round started every minute keeps each client's own rhythm), store the
    samples, open or recover incidents; return the samples and what was detected, and
    the problems of the clients left out as invalid (see :func:`choose_targets`).

    Raise BadInput as :func:`choose_targets`, EnvironmentProblem if the ledger fails;
    once the others are probed, ContractInvalid if a client was left out as invalid.
    """
    _clients, targets, problems = choose_targets(settings, names)
    with open_ledger(settings.ledger_url) as ledger, derived_recorders(settings) as (record, _):
        if due_only:
            targets = due_targets(targets, latest_sample_times(ledger), datetime.now(UTC))
        monitor = Monitor(targets, ledger, record)
        samples = monitor.run_once()
    return {
        "samples": [sample_document(sample) for sample in samples],
        "incidents_opened": monitor.detection.opened,
        "recoveries": monitor.detection.recovered,
    }, problems


def monitor_until_stopped(
    settings: Settings,
    names: Sequence[str],
    *,
    metrics_address: tuple[str, int] | None,
    started: Callable[[Monitor, tuple[str, int] | None], None],
) -> tuple[dict[str, Any], list[SourceProblem]]:
    """Given the settings, client names and where to serve ``/metrics`` (None: nowhere),
    probe until the monitor is stopped; ``started`` is called with the monitor and the
    metrics' bound address once probing starts (the caller wires its signals to
    :meth:`Monitor.stop` there). Return how many samples were stored and what was
    detected, and the problems of the clients left out as invalid (logged at the start).

    Raise BadInput as :func:`choose_targets`, EnvironmentProblem if the ledger fails
    at the start or the metrics' address cannot be bound.
    """
    clients, targets, problems = choose_targets(settings, names)
    for problem in problems:
        # Said at the start: a monitor may run for weeks before it is stopped.
        log.warning("client left out, its files are invalid: %s", problem)
    metrics = MonitorMetrics(settings, clients)
    with open_ledger(settings.ledger_url) as ledger, derived_recorders(settings) as (record, _):
        monitor = Monitor(
            targets, ledger, record, on_sample=lambda _target, sample: metrics.observe(sample)
        )
        bound = None if metrics_address is None else metrics.serve(*metrics_address)
        try:
            monitor.run(ready=lambda: started(monitor, bound))
        finally:
            metrics.close()
    return {
        "checks": len(targets),
        "clients": sorted({target.client.name for target in targets}),
        "samples_stored": monitor.stored,
        "incidents_opened": monitor.detection.opened,
        "recoveries": monitor.detection.recovered,
    }, problems
