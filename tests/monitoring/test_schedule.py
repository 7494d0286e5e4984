"""How often each client is probed, from its policy: institutional-sla every minute,
continuous-evolution every 5 minutes, stability-security not at all; education every
5 minutes and every minute in its exam periods; a hotel every 15 minutes for its page
weight, measured against the contract's budget. The systemd unit runs the monitor as
documented."""

from __future__ import annotations

import configparser
import json
import shlex
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.http_services import Route, serve

from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode
from webmg_ops.monitoring.metrics import parse_address
from webmg_ops.monitoring.monitor import page_budget, probe_interval

REPO = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)
#: 15 January: inside the education preset's winter exams; 15 March: outside any freeze.
IN_EXAMS = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
OUTSIDE = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)


def test_each_level_and_sector_probes_at_its_interval(
    inventories: Path, edit_contract: Callable[..., Any]
) -> None:
    def interval(name: str, at: datetime = OUTSIDE) -> timedelta | None:
        return probe_interval(load_client(inventories, name), at)

    assert interval("riverton") == MINUTE  # institutional-sla
    assert interval("terre-solidaire") == 5 * MINUTE  # continuous-evolution
    assert interval("atelier-nord") is None  # stability-security, sme: not monitored
    assert interval("alpenhof") == 15 * MINUTE  # stability-security, but a hotel
    edit_contract("atelier-nord", lambda data: data.update(sector="education"))
    assert interval("atelier-nord") == 5 * MINUTE
    assert interval("atelier-nord", IN_EXAMS) == MINUTE
    # The exam periods never slow a level that probes faster already.
    edit_contract("riverton", lambda data: data.update(sector="education"))
    assert interval("riverton", IN_EXAMS) == MINUTE


def test_a_hotel_page_weight_is_recorded_against_its_budget(
    cli: Callable[..., Any], edit_contract: Callable[..., Any], inventories: Path
) -> None:
    page = b"<html><img src='/room.jpg'></html>"
    image = b"j" * 2_500
    with serve({"/offers": Route(body=page), "/room.jpg": Route(body=image)}) as service:
        edit_contract(
            "alpenhof",
            lambda data: data.update(
                health_checks=[
                    {"name": "offers", "url": service.url("/offers"), "page_weight_kb": 2}
                ]
            ),
        )
        done = cli("monitor", "alpenhof", "--once", "--json")
    assert done.code == ExitCode.OK, done
    (sample,) = json.loads(done.out)["samples"]
    assert sample["page_bytes"] == len(page) + len(image)
    assert sample["page_budget"] == 2_000
    # Over its budget, the page is still available: weight and availability are apart.
    assert sample["up"]
    # A sector without the page-weight check ignores a declared budget.
    riverton = load_client(inventories, "riverton")
    check = riverton.contract.health_checks[0].model_copy(update={"page_weight_kb": 2})
    assert page_budget(riverton, check) is None


def test_the_systemd_unit_runs_the_monitor_on_loopback_and_stops_it_with_sigterm() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "webmg-ops-monitor.service")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/webmg-ops") and argv[1] == "monitor"
    host, port = parse_address(argv[argv.index("--metrics") + 1])
    assert (host, port) == ("127.0.0.1", 9464)
    assert service["KillSignal"] == "SIGTERM"
    # Bad configuration (exit 2) is not retried forever.
    assert service["RestartPreventExitStatus"] == "2"
