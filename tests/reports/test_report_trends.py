"""The maintenance section's detail and trends: the packages each update run changed
(from and to versions, per host), the hardening compliance of the last 12 periods (the
last score measured in each, in the client's time zone) and the restore drills' RPO and
RTO against their targets, in the figures, the HTML (tables and charts) and the PDF.

Entries are written the way the engine writes them: a ``run-finished`` entry whose
evidence is what the actions return (the update's per-host evidence is built by the
action's own ``host_evidence`` from raw play facts, the harden scores and the drill's
per-host figures as ``harden`` and ``drill`` record them). Expectations are computed
here from the raw facts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf

from webmg_ops.actions.update import host_evidence
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, roll_up, store_samples
from webmg_ops.reports.client_report import compliance_chart_svg, drill_chart_svg

Run = Callable[..., Any]

CLIENT = "terre-solidaire"  # monthly reports, Europe/Paris
PERIOD = "2026-10"

#: Raw update facts of one host, as the updates role reports them.
RAW_WEB1 = {
    "updated_from": ["demo-app=1.0", "libssl3=3.0.11-1"],
    "updated_to": ["demo-app=1.1", "libssl3=3.0.13-1", "libnew1=2.0"],
    "plan": [{"name": "demo-app", "new": "1.1", "origin": "security"}],
}
RAW_WEB2 = {
    "updated_from": ["demo-app=1.1"],
    "updated_to": ["demo-app=1.2"],
    "rollback": {"from": ["demo-app=1.2"], "to": ["demo-app=1.1"], "restored": True},
}


def score(passed: int, applicable: int) -> dict[str, Any]:
    return {"passed": passed, "applicable": applicable, "percent": 0.0}


def harden(before: tuple[int, int], after: tuple[int, int] | None) -> dict[str, Any]:
    """Return a hardening run's evidence; ``after`` None is a drift check (--check)."""
    return {
        "check": after is None,
        "score_before": score(*before),
        "score_after": None if after is None else score(*after),
        "hosts": {},
    }


#: (when, action, check, outcome, evidence) of every run recorded, in time order.
RUNS: list[tuple[datetime, str, bool, str, dict[str, Any]]] = [
    # 23:30 on 31 October 2025 in Paris: before the trend's first month.
    (
        datetime(2025, 10, 31, 22, 30, tzinfo=UTC),
        "harden",
        False,
        "succeeded",
        harden((1, 20), (2, 20)),
    ),
    # 00:30 on 1 November 2025 in Paris: the trend's first month.
    (
        datetime(2025, 10, 31, 23, 30, tzinfo=UTC),
        "harden",
        False,
        "succeeded",
        harden((3, 20), (15, 20)),
    ),
    (datetime(2026, 3, 3, 21, tzinfo=UTC), "harden", False, "succeeded", harden((9, 20), (16, 20))),
    # A later drift check in the same month: its score is the month's last.
    (datetime(2026, 3, 24, 21, tzinfo=UTC), "harden", True, "succeeded", harden((12, 20), None)),
    (datetime(2026, 6, 9, 21, tzinfo=UTC), "harden", False, "failed", harden((5, 20), (18, 20))),
    # A run that failed before measuring anything: the month keeps its last score.
    (datetime(2026, 6, 10, 21, tzinfo=UTC), "harden", False, "failed", {}),
    (datetime(2026, 7, 7, 21, tzinfo=UTC), "backup", False, "succeeded", {}),
    (
        datetime(2026, 10, 6, 21, tzinfo=UTC),
        "update",
        False,
        "failed",
        {"hosts": {"web1": host_evidence(RAW_WEB1, 1), "web2": host_evidence(RAW_WEB2, 2)}},
    ),
    (
        datetime(2026, 10, 7, 21, tzinfo=UTC),
        "update",
        True,
        "succeeded",
        {"hosts": {"web1": host_evidence({**RAW_WEB1, "check": True}, 1)}},
    ),
    (
        datetime(2026, 10, 13, 21, tzinfo=UTC),
        "update",
        False,
        "succeeded",
        {"hosts": {"web1": host_evidence({}, 1)}},
    ),
    (datetime(2026, 10, 20, 21, tzinfo=UTC), "harden", True, "succeeded", harden((19, 20), None)),
    (
        datetime(2026, 10, 21, 21, tzinfo=UTC),
        "drill",
        False,
        "succeeded",
        {
            "hosts": {
                "web1": {"rpo": "2h", "rpo_s": 7200.0, "rto": "5m", "rto_s": 300.0, "ok": True},
                "db1": {"rpo": "3h", "rpo_s": 10800.0, "rto": "4m", "rto_s": 240.0, "ok": True},
            },
            "targets": {"rpo": "24h", "rto": "8h"},
        },
    ),
    (
        datetime(2026, 10, 28, 22, tzinfo=UTC),
        "drill",
        False,
        "failed",
        {
            "hosts": {
                "web1": {
                    "rpo": "30h",
                    "rpo_s": 108000.0,
                    "rto": "9h",
                    "rto_s": 32400.0,
                    "ok": False,
                }
            },
            "targets": {"rpo": "24h", "rto": "8h"},
        },
    ),
    # After the period (November in Paris): not in the report of October.
    (
        datetime(2026, 11, 3, 21, tzinfo=UTC),
        "harden",
        False,
        "succeeded",
        harden((19, 20), (20, 20)),
    ),
]


def run_id(index: int) -> str:
    return f"r-{index:02d}"


def seed(url: str) -> None:
    """Record every run of RUNS as the engine does."""
    with open_ledger(url) as ledger:
        for index, (at, action, check, outcome, evidence) in enumerate(RUNS):
            ledger.append(
                "run-finished",
                CLIENT,
                {
                    "run_id": run_id(index),
                    "action": action,
                    "check": check,
                    "outcome": outcome,
                    "started_seq": 0,
                    "duration_s": 60,
                    "hosts": [],
                    "evidence": evidence,
                },
                at=at,
            )


def report(cli: Run, client: str = CLIENT, period: str = PERIOD) -> dict[str, Any]:
    done = cli("report", client, "--period", period, "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


def pdf_text(path: Path) -> str:
    """Return the PDF's text, whitespace folded and words a table cell hyphenated joined."""
    text = "".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)
    return re.sub(r"-\s+", "-", re.sub(r"\s+", " ", text))


def test_updates_list_each_runs_packages_with_their_versions(cli: Run, ledger_url: str) -> None:
    """Each real update run of the period is listed with the packages it changed per
    host, the version before and after (a new package has none before), and a host whose
    batch was rolled back says so; a dry run is not an update applied."""
    seed(ledger_url)

    document = report(cli)

    updates = document["figures"]["actions"]["updates"]
    assert [item["run_id"] for item in updates] == [run_id(7), run_id(9)]
    failed, empty = updates
    assert failed["outcome"] == "failed" and empty["packages"] == []
    expected = []
    for host, raw in (("web1", RAW_WEB1), ("web2", RAW_WEB2)):
        before = dict(item.split("=") for item in raw["updated_from"])
        after = dict(item.split("=") for item in raw["updated_to"])
        for name in sorted(before.keys() | after.keys()):
            expected.append((host, name, before.get(name), after.get(name), host == "web2"))
    assert [
        (p["host"], p["name"], p["from"], p["to"], p["rolled_back"]) for p in failed["packages"]
    ] == expected
    assert failed["log"] == f"../../../runs/{run_id(7)}/run-log.html"

    html = Path(document["html"]).read_text()
    table = html[html.index('<table id="updates">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert [cell[1:4] for cell in cells[:4]] == [
        ["web1", "demo-app", "1.0"],
        ["web1", "libnew1", "not installed"],
        ["web1", "libssl3", "3.0.11-1"],
        ["web2", "demo-app", "1.1"],
    ]
    assert cells[3][4].startswith("1.2 (rolled back")
    assert "No package was changed." in cells[4][1]
    pdf = pdf_text(Path(document["pdf"]))
    for shown in ("demo-app", "3.0.11-1", "3.0.13-1", "libnew1", "Updates applied"):
        assert shown in pdf, shown


def test_the_compliance_trend_is_the_last_score_of_each_of_12_months(
    cli: Run, ledger_url: str
) -> None:
    """The trend covers the 12 months ending with the report's, in the client's time zone
    (a run at 23:30 UTC on 31 October counts for November in Paris); each month shows the
    last score measured in it (a hardening run's after the play, a drift check's only
    one), months without a score show none, and runs after the period are not counted."""
    seed(ledger_url)

    document = report(cli)

    months = [f"{2025 + (10 + index) // 12}-{(10 + index) % 12 + 1:02d}" for index in range(12)]
    assert months[0] == "2025-11" and months[-1] == PERIOD
    last = {"2025-11": (15, 20), "2026-03": (12, 20), "2026-06": (18, 20), "2026-10": (19, 20)}
    expected = [
        {
            "period": month,
            "passed": last[month][0] if month in last else None,
            "total": last[month][1] if month in last else None,
            "percent": round(100 * last[month][0] / last[month][1], 1) if month in last else None,
        }
        for month in months
    ]
    assert document["figures"]["actions"]["compliance_trend"] == expected

    html = Path(document["html"]).read_text()
    table = html[html.index('<table id="compliance">') :]
    table = table[: table.index("</table>")]
    assert "<td>2026-03</td><td>12/20</td><td>60.0 %</td>" in table
    assert table.count("not measured") == 12 - len(last)
    chart = html[html.index("Hardening compliance") :]
    chart = chart[chart.index("<svg") : chart.index("</svg>")]
    for month in months:
        assert month in chart  # every month on the axis, measured or not
    for passed, total in last.values():
        assert f"{passed}/{total}" in chart  # the bar's label
    pdf = pdf_text(Path(document["pdf"]))
    assert "Hardening compliance" in pdf and "12/20" in pdf and "2025-11" in pdf


def test_drills_show_the_worst_hosts_rpo_and_rto_against_the_targets(
    cli: Run, ledger_url: str
) -> None:
    """A drill records RPO and RTO per host: the report shows the worst host's against
    the targets the drill recorded, in the figures (text and seconds), the drill's line
    and a chart with both drills' bars and the target as a line."""
    seed(ledger_url)

    document = report(cli)

    drills = document["figures"]["actions"]["drills"]
    assert [(d["run_id"], d["rpo"], d["rpo_s"], d["rto"], d["rto_s"], d["ok"]) for d in drills] == [
        (run_id(11), "3h", 3 * 3600.0, "5m", 5 * 60.0, True),
        (run_id(12), "30h", 30 * 3600.0, "9h", 9 * 3600.0, False),
    ]
    for drill in drills:
        assert (drill["rpo_target"], drill["rpo_target_s"]) == ("24h", 24 * 3600.0)
        assert (drill["rto_target"], drill["rto_target_s"]) == ("8h", 8 * 3600.0)

    html = Path(document["html"]).read_text()
    assert f"Restore drill {run_id(11)}: succeeded, RPO 3h (target 24h), RTO 5m (target 8h)" in html
    section = html[html.index("<h3>Restore drills</h3>") :]
    chart = section[section.index("<svg") : section.index("</svg>")]
    for text in (run_id(11), run_id(12), "RPO", "RTO", "target", "measured"):
        assert text in chart, text
    pdf = pdf_text(Path(document["pdf"]))
    assert "RPO 30h (target 24h)" in pdf


def test_the_charts_are_stable_and_their_ids_never_clash(cli: Run, ledger_url: str) -> None:
    """Drawn twice, a chart is the same bytes (no date in it); on one page, the
    availability, compliance and drill charts share no element id."""
    trend = [
        {"period": "2026-09", "passed": None, "total": None, "percent": None},
        {"period": "2026-10", "passed": 3, "total": 4, "percent": 75.0},
    ]
    drills = [
        {
            "run_id": "r-1",
            "rpo_s": 3600.0,
            "rto_s": 60.0,
            "rpo_target_s": 86400.0,
            "rto_target_s": 3600.0,
        }
    ]
    titles = {"rpo": "RPO", "rto": "RTO"}
    assert compliance_chart_svg(trend, "t") == compliance_chart_svg(trend, "t")
    assert drill_chart_svg(drills, titles, "m", "t") == drill_chart_svg(drills, titles, "m", "t")
    assert "dc:date" not in compliance_chart_svg(trend, "t")

    seed(ledger_url)
    # Two checks probed over a few days: two availability charts on the page too.
    with open_ledger(ledger_url) as ledger:
        store_samples(
            ledger,
            [
                Sample(client=CLIENT, check=name, at=at, up=True, status=200, latency_ms=90.0)
                for name in ("donation site", "donor portal")
                for at in (datetime(2026, 10, day, 12, tzinfo=UTC) for day in (5, 6, 7))
            ],
        )
        roll_up(ledger, datetime(2026, 11, 2, tzinfo=UTC))
    html = Path(report(cli)["html"]).read_text()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert html.count("<svg") == 4
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_without_runs_the_sections_say_so(cli: Run, ledger_url: str) -> None:
    """A period without updates, compliance or drills says so in each subsection and
    draws no chart for them."""
    document = report(cli, period="2026-09")

    actions = document["figures"]["actions"]
    assert actions["updates"] == [] and actions["drills"] == []
    assert [item["percent"] for item in actions["compliance_trend"]] == [None] * 12
    html = Path(document["html"]).read_text()
    for sentence in (
        "No update run during the period.",
        "No hardening compliance was measured in the last 12 periods.",
        "No restore drill during the period.",
    ):
        assert sentence in html
    assert "<svg" not in html


def test_a_quarterly_trend_covers_12_quarters(cli: Run, ledger_url: str) -> None:
    """A client reported on by quarter gets the 12 quarters ending with the report's."""
    document = report(cli, client="alpenhof", period="2026-Q3")

    periods = [item["period"] for item in document["figures"]["actions"]["compliance_trend"]]
    assert periods == [
        "2023-Q4",
        "2024-Q1",
        "2024-Q2",
        "2024-Q3",
        "2024-Q4",
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
    ]


def test_a_drill_that_restored_nothing_is_listed_without_a_chart(cli: Run, ledger_url: str) -> None:
    """A drill that could not open its repository measured no RPO or RTO: it is listed
    with its targets and no figures, and no drill chart is drawn; evidence of an unknown
    shape (hosts as a list) is read as none."""
    with open_ledger(ledger_url) as ledger:
        for index, (action, evidence) in enumerate(
            (
                ("drill", {"repository_error": "wrong password", "targets": {"rpo": "24h"}}),
                ("update", {"hosts": ["web1"]}),
                ("drill", {"hosts": ["web1"]}),
            )
        ):
            ledger.append(
                "run-finished",
                CLIENT,
                {
                    "run_id": run_id(index),
                    "action": action,
                    "outcome": "failed",
                    "evidence": evidence,
                },
                at=datetime(2026, 10, 5 + index, 9, tzinfo=UTC),
            )

    document = report(cli)

    first, second = document["figures"]["actions"]["drills"]
    assert (first["rpo"], first["rpo_s"], first["rpo_target"], first["rpo_target_s"]) == (
        None,
        None,
        "24h",
        24 * 3600.0,
    )
    assert (second["rto_s"], second["ok"]) == (None, None)
    assert document["figures"]["actions"]["updates"][0]["packages"] == []
    html = Path(document["html"]).read_text()
    section = html[html.index("<h3>Restore drills</h3>") :]
    assert "<svg" not in section
    assert (
        f"Restore drill {run_id(0)}: failed, RPO \u2013 (target 24h), RTO \u2013 (target \u2013)"
        in html
    )
