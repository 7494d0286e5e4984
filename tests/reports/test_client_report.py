"""The client's report: ``report CLIENT --period P`` writes HTML and PDF from the ledger
and the samples alone, with figures a reader can recompute, records ``report-written``
(files and sha256) so that ``due`` stops asking for it, and carries a proof of record
(the ledger's checkpoint at the period's end, signed with the agency's key) that
``ledger verify --checkpoint FILE --key`` accepts. Bad input writes nothing.

Every test runs on SQLite and on PostgreSQL (the ``ledger_url`` of the service tests).
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
import pytest
from support.recorded_runs import append_run_finished
from support.service import ledger_url, service_postgres

from webmg_ops.config.clients import load_client
from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, roll_up, store_samples
from webmg_ops.service.incidents import decide_open, rules_for

__all__ = ["ledger_url", "service_postgres"]

CLIENT = "alpenhof"  # a hotel: its report has the page-weight paragraph
CHECK = "booking site"
PERIOD = "2026-10"
#: The samples: every five minutes through October 2026 (UTC), well inside the
#: period in the client's time zone (Europe/Vienna) on both ends for the outages.
FIRST = datetime(2026, 10, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
COUNT = 12 * 24 * 31
UNPLANNED = range(2000, 2012)  # one hour down, unplanned
PLANNED = range(5000, 5006)  # half an hour of planned work
BUDGET = 1_500_000

Run = Callable[..., Any]


def october_samples() -> list[Sample]:
    """Return the month's samples: up but for one unplanned and one planned outage."""
    return [
        Sample(
            client=CLIENT,
            check=CHECK,
            at=FIRST + index * STEP,
            up=index not in UNPLANNED and index not in PLANNED,
            status=200,
            latency_ms=100.0 + index % 50,
            cause="refused" if index in UNPLANNED or index in PLANNED else None,
            planned=index in PLANNED,
            planned_by="run r-demo" if index in PLANNED else None,
            page_bytes=1_000_000 + index,
            page_budget=BUDGET,
        )
        for index in range(COUNT)
    ]


def seed(url: str) -> None:
    """Store the samples, roll them up, and record two runs of the period (an update
    and a drill) the way the engine does."""
    with open_ledger(url) as ledger:
        store_samples(ledger, october_samples())
        roll_up(ledger, datetime(2026, 11, 2, tzinfo=UTC))
        for day, action, evidence in (
            (10, "update", {}),
            (20, "drill", {"rpo": "2h", "rto": "5m", "rpo_target": "24h", "rto_target": "24h"}),
        ):
            append_run_finished(
                ledger,
                CLIENT,
                f"r-{action}",
                action,
                datetime(2026, 10, day, 9, tzinfo=UTC),
                evidence=evidence,
            )


def pdf_text(path: Path) -> str:
    """Return the PDF's text, whitespace folded (a table cell may wrap)."""
    text = "".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)
    return re.sub(r"\s+", " ", text)


def report(cli: Run, *args: str) -> dict[str, Any]:
    done = cli("report", CLIENT, "--json", *args)
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


def test_the_report_shows_figures_recomputed_from_the_samples_and_entries(
    cli: Run, ledger_url: str
) -> None:
    """Uptime (planned work out of the SLA figure), outages, runs and the page weight of
    the report are those the test computes from what it wrote, in the JSON, the HTML and
    the PDF alike; the files are private and the recorded sha256 are theirs."""
    seed(ledger_url)
    taken = october_samples()
    up = sum(1 for item in taken if item.up)
    sla = f"{100 * up / (len(taken) - len(PLANNED)):.3f}"
    raw = f"{100 * up / len(taken):.3f}"

    document = report(cli, "--period", PERIOD)

    (check,) = document["figures"]["availability"]
    assert (check["probes"], check["up"], check["down_planned"]) == (COUNT, up, len(PLANNED))
    assert f"{check['sla_percent']:.3f}" == sla
    assert f"{check['uptime_percent']:.3f}" == raw
    outages = {(item["planned"], item["duration_s"]) for item in check["outages"]}
    # An outage ends at the first sample up again: as many steps as failing samples.
    assert outages == {
        (False, len(UNPLANNED) * STEP.total_seconds()),
        (True, len(PLANNED) * STEP.total_seconds()),
    }
    runs = {run["run_id"]: run for run in document["figures"]["actions"]["runs"]}
    assert set(runs) == {"r-update", "r-drill"}
    assert runs["r-update"]["log"] == "../../../runs/r-update/run-log.html"
    assert document["figures"]["actions"]["updates_applied"] == 1
    assert document["figures"]["sector_note"] == {
        "kind": "page_weight_within",
        "page_bytes_max": 1_000_000 + COUNT - 1,
        "page_budget": BUDGET,
    }

    html = Path(document["html"]).read_text()
    pdf = pdf_text(Path(document["pdf"]))
    for shown in (sla, raw, "r-update", "r-drill", "1 h", "30 min", "RPO 2h"):
        assert shown in html
        assert shown in pdf, shown
    assert 'href="../../../runs/r-update/run-log.html"' in html
    # Archival and tagged: PDF/A-3u declared in its metadata, a structure tree.
    reader = pypdf.PdfReader(document["pdf"])
    assert reader.xmp_metadata is not None
    metadata = reader.xmp_metadata.stream.get_data().decode()
    assert 'pdfaid:part="3"' in metadata and 'pdfaid:conformance="U"' in metadata
    assert "/StructTreeRoot" in reader.root_object
    assert "<svg" in html  # the chart, inline

    folder = Path(document["html"]).parent
    assert folder.name == PERIOD and folder.parent.name == CLIENT
    for name in ("html", "pdf", "checkpoint"):
        path = Path(document[name])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert document["sha256"][name] == hashlib.sha256(path.read_bytes()).hexdigest()
    with open_ledger(ledger_url, create=False) as ledger:
        (written,) = ledger.entries(kinds=("report-written",))
    assert written.seq == document["seq"]
    assert written.payload["period"] == PERIOD
    assert written.payload["files"]["pdf"]["sha256"] == document["sha256"]["pdf"]


def test_the_proof_of_record_verifies_with_the_agency_key(
    cli: Run, ledger_url: str, private_var: Path
) -> None:
    """The checkpoint at the period's end names the last entry recorded before it
    (counted here from the entries), is signed by the agency's key, and ``ledger
    verify --checkpoint FILE --key`` accepts it, also once more entries follow."""
    seed(ledger_url)
    keys = cli("ledger", "keygen", "--json")
    assert keys.code == ExitCode.OK, keys
    public = json.loads(keys.out)["public_key_file"]
    with open_ledger(ledger_url) as ledger:
        # An entry after the period: not part of the period's checkpoint.
        ledger.append("note", CLIENT, {"text": "after the period"})
        end = datetime(2026, 10, 31, 23, tzinfo=UTC)  # 1 November 00:00 in Vienna
        before = [entry for entry in ledger.entries() if entry.at < end]

    document = report(cli, "--period", PERIOD)

    assert document["figures"]["proof"] == {"seq": before[-1].seq, "hash": before[-1].hash}
    note = Path(document["checkpoint"]).read_text()
    assert note.splitlines()[1] == str(before[-1].seq)
    assert "\n\n\u2014 " in note  # signed
    assert before[-1].hash in Path(document["html"]).read_text()
    done = cli("ledger", "verify", "--checkpoint", document["checkpoint"], "--key", public)
    assert done.code == ExitCode.OK, done
    assert document["verify"].endswith(f"--key {public}")


@pytest.mark.parametrize(
    "args",
    [
        ("nobody", "--period", PERIOD),
        (CLIENT, "--period", "2026-13"),
        (CLIENT, "--period", "2026-Q5"),
        (CLIENT, "--period", "last month"),
        (CLIENT, "--period", "2099-01"),
    ],
    ids=["unknown-client", "bad-month", "bad-quarter", "words", "future"],
)
def test_bad_input_exits_2_and_writes_nothing(
    cli: Run, ledger_url: str, private_var: Path, args: tuple[str, ...]
) -> None:
    """An unknown client, a malformed period or one in the future: exit 2, a message,
    no traceback, no file and no entry."""
    done = cli("report", *args)
    assert done.code == ExitCode.BAD_INPUT, done
    assert "Traceback" not in done.err
    assert not (private_var / "reports").exists()
    with open_ledger(ledger_url) as ledger:
        assert list(ledger.entries()) == []


def test_a_period_without_data_says_so(cli: Run, ledger_url: str) -> None:
    """A period with nothing recorded still gets its report, which says so."""
    document = report(cli, "--period", "2026-09")
    assert document["figures"]["has_data"] is False
    sentence = "Nothing was recorded for this period"
    assert sentence in Path(document["html"]).read_text()
    assert sentence in pdf_text(Path(document["pdf"]))


def test_due_stops_asking_for_the_report_once_written(cli: Run, ledger_url: str) -> None:
    """``due`` lists the report until one is written, then no longer."""

    def due() -> list[str]:
        done = cli("due", CLIENT, "--json")
        assert done.code == ExitCode.OK, done
        (document,) = json.loads(done.out)
        return list(document["due"])

    assert "report" in due()
    report(cli)
    assert "report" not in due()


def test_incidents_of_the_period_with_their_sla_clocks(
    cli: Run, ledger_url: str, inventories: Path
) -> None:
    """An incident opened in the period and never closed is listed with its severity
    (as the policy's table set it when opened), open, every SLA clock breached at the
    period's end (26 days is past any level's budget); one opened after the period is
    not listed."""
    rules = rules_for(load_client(inventories, CLIENT))
    drafts = [
        decide_open(
            rules,
            title=title,
            impact="availability",
            criticality="critical",
            host=None,
            reported_by="front desk",
            ticket=None,
            by=None,
            now=at,
        )
        for title, at in (
            ("booking site down", datetime(2026, 10, 5, 9, tzinfo=UTC)),
            ("after the period", datetime(2026, 11, 5, 9, tzinfo=UTC)),
        )
    ]
    with open_ledger(ledger_url) as ledger:
        inside, _after = ledger.append_many(drafts)

    document = report(cli, "--period", PERIOD)

    (incident,) = document["figures"]["incidents"]
    assert incident["id"] == f"INC-{inside.seq}"
    assert incident["severity"] == inside.payload["severity"]
    assert incident["closed_at"] is None
    assert incident["clocks"] and all(clock["state"] == "breached" for clock in incident["clocks"])
    html = Path(document["html"]).read_text()
    assert "booking site down" in html and "after the period" not in html
    assert f"INC-{inside.seq}" in pdf_text(Path(document["pdf"]))


@pytest.mark.parametrize(
    ("client", "period"),
    [("alpenhof", "2026-Q"), ("terre-solidaire", "2026-")],
    ids=["quarterly", "monthly"],
)
def test_the_default_period_is_the_last_complete_one_of_the_cadence(
    cli: Run, ledger_url: str, client: str, period: str
) -> None:
    """Without --period, a level reporting quarterly (stability-security) gets the last
    complete quarter, one reporting monthly (continuous-evolution) the last complete
    month, both in the client's time zone."""
    done = cli("report", client, "--json")
    assert done.code == ExitCode.OK, done
    figures = json.loads(done.out)["figures"]
    zone = ZoneInfo(figures["timezone"])
    today = datetime.now(UTC).astimezone(zone).date()
    if period.endswith("Q"):
        quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = quarter_start - timedelta(days=1)
        expected = f"{last.year}-Q{(last.month - 1) // 3 + 1}"
    else:
        last = today.replace(day=1) - timedelta(days=1)
        expected = f"{last.year}-{last.month:02d}"
    assert figures["period"] == expected
    assert datetime.fromisoformat(figures["end"]) <= datetime.now(UTC)
    assert figures["in_progress"] is False


def test_secrets_are_masked_in_the_report(cli: Run, ledger_url: str, inventories: Path) -> None:
    """A client's secret (here a secret-named inventory variable) typed into free text
    the ledger holds (an incident's title) is masked in the HTML, the PDF and the JSON,
    as run logs mask it."""
    secret = "Wq7-report-secret-93xz"
    variables = inventories / CLIENT / "group_vars" / "all" / "main.yml"
    variables.write_text(variables.read_text() + f'\nreport_test_db_password: "{secret}"\n')
    rules = rules_for(load_client(inventories, CLIENT))
    draft = decide_open(
        rules,
        title=f"login fails with {secret}",
        impact="availability",
        criticality="minor",
        host=None,
        reported_by=None,
        ticket=None,
        by=None,
        now=datetime(2026, 10, 5, 9, tzinfo=UTC),
    )
    with open_ledger(ledger_url) as ledger:
        ledger.append_many([draft])

    done = cli("report", CLIENT, "--period", PERIOD, "--json")

    assert done.code == ExitCode.OK, done
    document = json.loads(done.out)
    assert "login fails with" in Path(document["html"]).read_text()
    for text in (done.out, Path(document["html"]).read_text(), pdf_text(Path(document["pdf"]))):
        assert secret not in text
