"""``monitor``: probe the contracts' health checks, store samples, detect incidents.

Exit codes: 0 once the samples are recorded, whatever the services answered (a
service down is data, and an incident where the policy says so, not a failure of
the command); 2 for bad input (unknown client, a client with nothing to monitor, a
metrics address that is not loopback), and, once the others were probed, when a
client was left out because its files are invalid (only when no client is named:
the others are monitored); 4 when the ledger or the metrics' address is unusable.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from webmg_ops.config.clients import ContractInvalid
from webmg_ops.errors import BadInput
from webmg_ops.monitoring.metrics import DEFAULT_ADDRESS, parse_address
from webmg_ops.monitoring.monitor import Monitor
from webmg_ops.monitoring.runner import monitor_once, monitor_until_stopped
from webmg_ops.settings import Settings

from .common import console, emit_json, json_option, pass_settings

#: ``--metrics off`` serves no metrics.
METRICS_OFF = "off"


def _print_once(result: dict[str, Any]) -> None:
    for sample in result["samples"]:
        if sample["up"]:
            state = f"up {sample['status']} in {sample['latency_ms']} ms"
        else:
            state = f"DOWN ({sample['cause']}: {sample['detail']})"
            if sample["planned"]:
                state += f", planned: {sample['planned_by']}"
        if sample["cert_days"] is not None:
            state += f", certificate {sample['cert_days']:.0f} days left"
        if sample["page_bytes"] is not None:
            state += f", page {sample['page_bytes']} of {sample['page_budget']} bytes"
        console.print(f"{sample['client']} / {sample['check']}: {state}")
    for item in result["incidents_opened"]:
        console.print(f"incident opened: {item}")
    for item in result["recoveries"]:
        console.print(f"recovery recorded: {item}")


def _stop_on_signals(monitor: Monitor) -> Callable[[], None]:
    """Make SIGTERM and SIGINT stop the monitor; return what puts the handlers back."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        console.print(f"{signal.Signals(signum).name}: stopping, storing the samples taken")
        monitor.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


@click.command("monitor")
@click.argument("clients", nargs=-1, metavar="[CLIENT...]")
@click.option("--once", is_flag=True, help="Probe every check once, record, and exit.")
@click.option(
    "--due",
    "due_only",
    is_flag=True,
    help="With --once, probe only the checks whose client's interval has passed since "
    "their last sample (a round started every minute, as a worker's --monitor does).",
)
@click.option(
    "--metrics",
    "metrics",
    metavar="HOST:PORT",
    default=None,
    help=f"Serve /metrics here, on loopback (default {DEFAULT_ADDRESS}; 'off': none).",
)
@json_option
@pass_settings
def monitor_command(
    settings: Settings,
    clients: tuple[str, ...],
    once: bool,
    due_only: bool,
    metrics: str | None,
    as_json: bool,
) -> None:
    """Probe the health checks of CLIENT (every monitored client when none is named) at
    each client's policy interval: status, latency, certificate, page weight. Samples
    are stored in the ledger's database; a check failing the policy's number of times
    in a row opens an incident, and its recovery is recorded. SIGTERM or SIGINT stop it
    after storing every sample taken."""
    if once:
        if metrics is not None:
            raise BadInput("--metrics serves a running monitor: it has no use with --once")
        result, problems = monitor_once(settings, clients, due_only=due_only)
        if as_json:
            emit_json(result)
        else:
            _print_once(result)
        if problems:
            raise ContractInvalid(problems)
        return
    if due_only:
        raise BadInput("--due chooses the checks of one round: it needs --once")
    address = None if metrics == METRICS_OFF else parse_address(metrics or DEFAULT_ADDRESS)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    restore: list[Callable[[], None]] = []

    def started(monitor: Monitor, bound: tuple[str, int] | None) -> None:
        restore.append(_stop_on_signals(monitor))
        where = f"; metrics on http://{bound[0]}:{bound[1]}/metrics" if bound else ""
        console.print(
            f"monitoring {len(monitor.targets)} check(s) of "
            f"{len({target.client.name for target in monitor.targets})} client(s){where}"
        )

    try:
        result, problems = monitor_until_stopped(
            settings, clients, metrics_address=address, started=started
        )
    finally:
        for undo in restore:
            undo()
    if as_json:
        emit_json(result)
    else:
        console.print(f"stopped: {result['samples_stored']} sample(s) stored")
    if problems:
        raise ContractInvalid(problems)
